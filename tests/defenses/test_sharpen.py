"""SSK/RSK kernels: the paper's definitions, checked by their properties and statistics."""
from __future__ import annotations

import pytest
import torch

from poisonkit.defenses.sharpen import rsk_kernels, ssk_kernel


@pytest.mark.parametrize("center", [2.5, 1.0, 4.0])
def test_ssk_kernel(center):
    k = ssk_kernel(center)
    n = (center - 1) / 4
    expected = torch.tensor([[0, -n, 0], [-n, center, -n], [0, -n, 0]], dtype=torch.float32)
    assert torch.equal(k, expected)
    assert k.sum().item() == pytest.approx(1.0)


def test_rsk_statistics():
    k = rsk_kernels(20000, center=2.5, std=0.1, generator=torch.Generator().manual_seed(0))
    corners = k[:, [0, 0, 2, 2], [0, 2, 0, 2]]
    assert (corners == 0).all()
    c = k[:, 1, 1]
    assert c.mean().item() == pytest.approx(2.5, abs=0.005)
    assert c.std().item() == pytest.approx(0.1, rel=0.05)
    n = -k[:, [0, 1, 1, 2], [1, 0, 2, 1]]
    residual = n - (c[:, None] - 1) / 4  # each n_i ~ N((c-1)/4, std) given c
    assert residual.mean().item() == pytest.approx(0.0, abs=0.003)
    assert residual.std().item() == pytest.approx(0.1, rel=0.05)
    # the four neighbours are drawn independently
    corr = torch.corrcoef(residual.T)
    assert (corr - torch.eye(4)).abs().max() < 0.05


def test_rsk_seeded_is_reproducible():
    a = rsk_kernels(5, generator=torch.Generator().manual_seed(7))
    b = rsk_kernels(5, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


@pytest.mark.parametrize("kwargs, match", [
    ({"center": float("nan")}, "center"),
    ({"std": float("inf")}, "std"),
    ({"std": -0.1}, "std"),
])
def test_rsk_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rsk_kernels(3, **kwargs)
