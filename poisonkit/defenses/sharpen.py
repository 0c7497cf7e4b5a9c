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
                generator: torch.Generator | None = None) -> torch.Tensor:
    """count random sharpening kernels, float32 [count, 3, 3]."""
    _check_finite("center", center)
    _check_finite("std", std)
    if std < 0:
        raise ValueError(f"std: expected a non-negative number, got {std!r}")
    c = torch.normal(center, std, (count,), generator=generator)
    n = (c[:, None] - 1.0) / 4.0 + std * torch.randn((count, 4), generator=generator)
    k = torch.zeros(count, 3, 3)
    k[:, 1, 1] = c
    k[:, 0, 1], k[:, 1, 0], k[:, 1, 2], k[:, 2, 1] = (-n).unbind(1)
    return k
