"""pytest-benchmark suite for the low-pass: poisonkit vs scipy.fft and torch.fft on the
same real CIFAR-10 batch, 2 threads.

    pytest benchmarks/bench_lowpass.py --benchmark-only
"""
from __future__ import annotations

import pytest
import torch

from poisonkit.bench.common import load_cifar_uint8
from poisonkit.bench.lowpass import (THREADS, resized, scipy_dct_lowpass, torch_fft_disk_mask,
                                torch_fft_lowpass)
from poisonkit import ops


@pytest.fixture(scope="module", params=[32, 224], ids=lambda s: f"{s}x{s}")
def batch(request):
    torch.set_num_threads(THREADS)
    size = request.param
    x = load_cifar_uint8(1024 if size == 32 else 32)
    return x if size == 32 else resized(x, size)


@pytest.mark.benchmark(group="lowpass-dct-square-uint8")
def test_poisonkit_dct(benchmark, batch):
    benchmark(ops.lowpass, batch)


@pytest.mark.benchmark(group="lowpass-dct-square-uint8")
def test_scipy_dct(benchmark, batch):
    benchmark(scipy_dct_lowpass, batch.numpy())


@pytest.mark.benchmark(group="lowpass-fft-disk-uint8")
def test_poisonkit_fft_disk(benchmark, batch):
    benchmark(ops.lowpass, batch, basis="fft", shape="disk")


@pytest.mark.benchmark(group="lowpass-fft-disk-uint8")
def test_torch_fft_disk(benchmark, batch):
    mask = torch_fft_disk_mask(*batch.shape[-2:])
    benchmark(torch_fft_lowpass, batch, mask)
