"""pytest-benchmark suite for project_out (run: pytest benchmarks/bench_projection.py
--benchmark-only): poisonkit and the plain torch path on the same 512 real images."""
from __future__ import annotations

import pytest
import torch

from poisonkit import ops

from poisonkit.bench.common import load_cifar_uint8
from poisonkit.bench.projection import N, basis, torch_project_out


@pytest.fixture(scope="module")
def data():
    torch.set_num_threads(2)
    x = load_cifar_uint8(N)
    return {"uint8": x, "float32": x.float() / 255}, basis()


@pytest.mark.parametrize("impl", ["poisonkit", "torch"])
@pytest.mark.parametrize("dtype,clamp", [("uint8", False), ("float32", False), ("uint8", True)])
def test_project_out(benchmark, data, impl, dtype, clamp):
    images, Q = data
    x = images[dtype]
    benchmark.group = f"project_out-{dtype}{'-clamp' if clamp else ''}-32-K10"
    fn = ops.project_out if impl == "poisonkit" else torch_project_out
    benchmark(fn, x, Q, clamp)
