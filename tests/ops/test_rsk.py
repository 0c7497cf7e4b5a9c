"""rsk_kernels: the RSK kernels of (seed, sample index, epoch) against a Python Philox
reference of the same draws, their distribution (c ~ N(center, std), n_i ~ N((c-1)/4, std)),
batch invariance, the sharpen.rsk_kernels wrapper, bad input (opcheck: test_op_contracts)."""
import math

import pytest
import torch

from poisonkit import ops
from poisonkit.defenses.sharpen import rsk_kernels
from tests.conftest import requires_cuda
from tests.ops.test_ar import reference_normal

RSK_STREAM = 0x534B0001  # 'SK'
TAPS = [(0, 1), (1, 0), (1, 2), (2, 1)]  # n1..n4


def reference_kernel(seed, index, epoch, center, std):
    """Written from DESIGN 3.3 with the documented draw numbers 8 * epoch + 0..4."""
    z = [reference_normal(seed, index, 8 * epoch + d, RSK_STREAM) for d in range(5)]
    c = center + std * z[0]
    k = torch.zeros(3, 3, dtype=torch.float64)
    k[1, 1] = c
    for (a, b), zi in zip(TAPS, z[1:]):
        k[a, b] = -((c - 1) / 4 + std * zi)
    return k


@pytest.mark.parametrize("seed,epoch", [(0, 0), (12345, 3), (2**63 + 5, 2**31 - 1)])
def test_matches_python_philox(seed, epoch):
    indices = torch.tensor([0, 1, 7, 2**40])
    out = ops.rsk_kernels(seed, indices, epoch, 2.5, 0.1)
    assert out.shape == (4, 3, 3) and out.dtype == torch.float32
    for k, i in zip(out, indices.tolist()):
        torch.testing.assert_close(k.double(), reference_kernel(seed, i, epoch, 2.5, 0.1),
                                   atol=2e-6, rtol=0)


def test_distribution_moments():
    n, center, std = 200_000, 2.5, 0.1
    k = ops.rsk_kernels(7, torch.arange(n), 0, center, std).double()
    c = k[:, 1, 1]
    nb = torch.stack([-k[:, a, b] for a, b in TAPS], 1)
    resid = nb - (c[:, None] - 1) / 4  # ~ N(0, std), independent of c and of each other
    se = std / math.sqrt(n)
    assert abs(c.mean() - center) < 5 * se
    assert abs(c.std() / std - 1) < 0.01
    assert (resid.mean(0).abs() < 5 * se).all()
    assert ((resid.std(0) / std - 1).abs() < 0.01).all()
    corr = torch.corrcoef(torch.cat([c[None], resid.T]))
    assert (corr - torch.eye(5, dtype=corr.dtype)).abs().max() < 0.01
    # the other taps are exactly zero
    assert (k[:, [0, 0, 2, 2], [0, 2, 0, 2]] == 0).all()


def test_batch_invariance_and_epochs():
    all_ = ops.rsk_kernels(3, torch.arange(10), 4, 2.5, 0.1)
    some = ops.rsk_kernels(3, torch.tensor([7, 2]), 4, 2.5, 0.1)
    assert torch.equal(some, all_[[7, 2]])
    assert not torch.equal(all_, ops.rsk_kernels(3, torch.arange(10), 5, 2.5, 0.1))
    assert not torch.equal(all_, ops.rsk_kernels(4, torch.arange(10), 4, 2.5, 0.1))


def test_std_zero_is_ssk():
    from poisonkit.defenses.sharpen import ssk_kernel
    out = ops.rsk_kernels(3, torch.arange(4), 0, 2.5, 0.0)
    assert torch.equal(out, ssk_kernel(2.5).expand(4, 3, 3))


def test_wrapper_signature():
    g = torch.Generator().manual_seed(5)
    a = rsk_kernels(6, 2.5, 0.1, g)
    b = rsk_kernels(6, 2.5, 0.1, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and a.shape == (6, 3, 3)
    assert not torch.equal(a, rsk_kernels(6, 2.5, 0.1, g))  # the generator moved on
    c = rsk_kernels(2, 2.5, 0.1, seed=9, indices=torch.tensor([4, 1]), epoch=2)
    assert torch.equal(c, ops.rsk_kernels(9, torch.tensor([4, 1]), 2, 2.5, 0.1))
    assert rsk_kernels(0, 2.5, 0.1).shape == (0, 3, 3)
    with pytest.raises(ValueError, match="indices"):
        rsk_kernels(3, seed=1, indices=torch.arange(2))


@pytest.mark.parametrize("args,match", [
    ((0, torch.arange(3), -1, 2.5, 0.1), "epoch"),
    ((0, torch.arange(3), 2**31, 2.5, 0.1), "epoch"),
    ((0, torch.arange(3), 0, 2.5, -0.1), "std"),
    ((0, torch.arange(3), 0, 2.5, math.nan), "std"),
    ((0, torch.arange(3), 0, math.inf, 0.1), "center"),
    ((0, torch.arange(3.0), 0, 2.5, 0.1), "indices must be int64"),
    ((0, torch.arange(4).reshape(2, 2), 0, 2.5, 0.1), "indices must be 1-D"),
    ((0, torch.tensor([1, -2]), 0, 2.5, 0.1), "indices must be >= 0"),
    ((torch.tensor(1.0), torch.arange(3), 0, 2.5, 0.1), "seed must be one int64"),
    ((torch.tensor([1, 2]), torch.arange(3), 0, 2.5, 0.1), "seed must be one int64"),
])
def test_bad_input(args, match):
    with pytest.raises(RuntimeError, match=match):
        ops.rsk_kernels(*args)


@requires_cuda
def test_cuda_matches_cpu():
    indices = torch.arange(1000)
    cpu = ops.rsk_kernels(11, indices, 3, 2.5, 0.1)
    cuda = ops.rsk_kernels(11, indices.cuda(), 3, 2.5, 0.1)
    assert cuda.device.type == "cuda"
    # same Philox words; CUDA's logf/sincosf may differ from glibc's in the last ulp
    torch.testing.assert_close(cuda.cpu(), cpu, atol=1e-6, rtol=0)
