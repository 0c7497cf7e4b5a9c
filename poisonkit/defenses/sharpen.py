"""Sharpening kernels of the RSK+FF defense (Kim & Sandoval-Segura, 2024).

SSK: K = [[0, -n, 0], [-n, c, -n], [0, -n, 0]] with n = (c - 1) / 4, so the taps sum to 1.
RSK: c ~ N(center, std), then n1..n4 ~ N((c - 1) / 4, std) independently, one kernel per
image per call: K = [[0, -n1, 0], [-n2, c, -n3], [0, -n4, 0]].
"""
from __future__ import annotations

import math

import torch


def _check_finite(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")


def ssk_kernel(center: float = 2.5) -> torch.Tensor:
    """The fixed sharpening kernel, float32 [3, 3]."""
    _check_finite("center", center)
    n = (center - 1.0) / 4.0
    return torch.tensor([[0.0, -n, 0.0], [-n, center, -n], [0.0, -n, 0.0]], dtype=torch.float32)


def rsk_kernels(count: int, center: float = 2.5, std: float = 0.1,
                generator: torch.Generator | None = None, *,
                seed: int | torch.Tensor | None = None,
                indices: torch.Tensor | None = None, epoch: int = 0) -> torch.Tensor:
    """count random sharpening kernels, float32 [count, 3, 3], drawn by the Philox op
    poisonkit.ops.rsk_kernels: kernel i is a pure function of (seed, indices[i], epoch), the
    same as the DALI operator fn.poisonkit.sharpen's. Without seed, one seed is drawn from
    `generator` (or torch's global RNG) and kept a tensor (traceable by torch.compile);
    without indices, indices = arange(count)."""
    from ..ops import rsk_kernels as rsk_op
    _check_finite("center", center)
    _check_finite("std", std)
    if std < 0:
        raise ValueError(f"std: expected a non-negative number, got {std!r}")
    if seed is None:
        seed = torch.randint(0, 2**62, (), generator=generator)
    if indices is None:
        indices = torch.arange(count)
    elif indices.shape != (count,):
        raise ValueError(f"indices: expected shape ({count},) (count), got {tuple(indices.shape)}")
    return rsk_op(seed, indices, epoch, center, std)
