"""pytest-benchmark suite for AR generation: poisonkit's ar_generate vs the reference's
per-pixel loop (one 32x32 image), same run."""
import pytest
import torch

from poisonkit import ops
from poisonkit.poisons.ar import sample_coefficients

from poisonkit.bench.ar import CASES, reference_loop


@pytest.fixture(scope="module")
def coeffs():
    torch.set_num_threads(2)
    return sample_coefficients(10, seed=0, progress=False).coeffs


@pytest.mark.parametrize("case,size,crop,batch", [c[:4] for c in CASES], ids=[c[0] for c in CASES])
def test_poisonkit_ar_generate(benchmark, coeffs, case, size, crop, batch):
    labels, indices = torch.arange(batch) % 10, torch.arange(batch)
    out = benchmark(ops.ar_generate, coeffs, labels, indices, 1, size, size, crop, 1.0, 2)
    assert out.shape == (batch, 3, size, size)


def test_reference_loop_32(benchmark, coeffs):
    torch.set_num_threads(1)  # tiny ops: a second thread only adds barrier overhead
    try:
        out = benchmark.pedantic(reference_loop, args=(coeffs[0], 32, 4), rounds=2, iterations=1)
    finally:
        torch.set_num_threads(2)
    assert out.shape == (3, 32, 32)
