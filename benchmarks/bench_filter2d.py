"""pytest-benchmark suite for filter2d (run: pytest benchmarks/bench_filter2d.py
--benchmark-only). Each group times poisonkit and its peers on the same 512 real images."""
from __future__ import annotations

import pytest
import torch

from poisonkit import ops
from poisonkit.transforms import ClasswiseBlur

from poisonkit.bench import filter2d_peers as peers
from poisonkit.bench.common import load_cifar_uint8

N = 512


@pytest.fixture(scope="module")
def data():
    torch.set_num_threads(2)
    return load_cifar_uint8(N), torch.arange(N) % 10


@pytest.mark.benchmark(group="ssk-uint8-32")
@pytest.mark.parametrize("impl", ["poisonkit", "torch_conv2d", "kornia", "opencv", "pillow"])
def test_ssk(benchmark, data, impl):
    x, _ = data
    if impl == "poisonkit":
        w = peers.SSK.expand(N, 3, 3).contiguous()
        benchmark(lambda: ops.filter2d(x, w, padding="reflect"))
    elif impl == "torch_conv2d":
        benchmark(lambda: peers.sharpen_torch_conv2d(x))
    elif impl == "kornia":
        benchmark(lambda: peers.sharpen_kornia(x))
    elif impl == "opencv":
        hwc = peers.opencv_inputs(x)
        benchmark(lambda: peers.sharpen_opencv(hwc))
    else:
        pil = peers.pil_inputs(x)
        benchmark(lambda: peers.sharpen_pillow(pil))


@pytest.mark.benchmark(group="classwise-blur-uint8-32")
@pytest.mark.parametrize("impl", ["poisonkit", "torch_grouped_conv2d", "reference_loop"])
def test_classwise_blur(benchmark, data, impl):
    x, y = data
    blur = ClasswiseBlur(seed=0)
    if impl == "poisonkit":
        benchmark(lambda: blur(x, y))
    elif impl == "torch_grouped_conv2d":
        benchmark(lambda: peers.classwise_torch_batched(x, y, blur.kernels))
    else:
        benchmark.pedantic(peers.classwise_reference_loop, args=(x, y, blur.kernels), rounds=3)
