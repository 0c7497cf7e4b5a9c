"""Frequency low-pass of the RSK+FF defense (Kim & Sandoval-Segura, 2024): the basis rows
that poisonkit.ops.lowpass projects onto, built with torch in float64 (so torch.compile
traces them), stored as float32 and cached per (size, keep, basis, shape, device).
Public through poisonkit.defenses.lowpass; here so that ops does not import defenses.

The filter keeps a low-frequency block of coefficients in a real orthonormal basis of each
spatial axis and inverts, per channel: out = R_H^T (M o (R_H X R_W^T)) R_W, where R_n holds
the kept basis rows of a size-n axis and M is 1 everywhere for the square masks. For the
square masks this is the separable projector out = P_H X P_W^T with P = R^T R = B^T diag(m) B.

Which frequencies are kept, for a size-n axis:

- basis='dct': orthonormal DCT-II rows k = 0 .. r-1 with r = int(n * keep), as the reference
  (its p = 100 * keep; a 1e-9 guard makes e.g. int(180 * 0.35) give 63 like 180 * 35 // 100).
  shape='square' keeps the r_H x r_W top-left block (the reference); shape='disk' keeps the
  quarter ellipse inscribed in it, (k1 / r_H)^2 + (k2 / r_W)^2 < 1.
- basis='fft': the signed DFT frequencies k in (-n/2, n/2] with |k| <= R, R = int(n * keep / 2),
  i.e. keep is the kept fraction of the band [0, Nyquist], the same fraction as the DCT's
  (n = 32, keep = 0.3: 9 frequencies in both bases; keep = 1 keeps everything).
  shape='disk' keeps (2 k1 / H)^2 + (2 k2 / W)^2 <= keep^2, the ellipse inscribed in the square.
  Both masks are symmetric under k -> -k, so the masked spectrum stays Hermitian and the
  result is real: it is computed directly in the real Fourier basis (1, cos, sin rows) that
  spans the same frequencies, equal to ifft2(mask * fft2(x)).real.
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch

BASES = ("dct", "fft")
SHAPES = ("square", "disk")
_EPS = 1e-9  # absorbs float error in n * keep, so exact products floor as integers do


def check_options(keep, basis: str, shape: str) -> float:
    """Validates keep (a number in (0, 1]), basis and shape; returns keep as a float."""
    if isinstance(keep, bool) or not isinstance(keep, (int, float)) or not math.isfinite(keep):
        raise ValueError(f"keep: expected a finite number in (0, 1], got {keep!r}")
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep: expected a number in (0, 1], got {keep!r}")
    if basis not in BASES:
        raise ValueError(f"basis: expected one of {BASES}, got {basis!r}")
    if shape not in SHAPES:
        raise ValueError(f"shape: expected one of {SHAPES}, got {shape!r}")
    return float(keep)


def dct_rank(n: int, keep: float) -> int:
    """Number of DCT coefficients kept along a size-n axis: int(n * keep)."""
    return int(math.floor(n * keep + _EPS))


def fft_radius(n: int, keep: float) -> int:
    """Largest |frequency| kept along a size-n axis by the FFT square mask."""
    return int(math.floor(n * keep / 2 + _EPS))


def _dct_rows(n: int, keep: float) -> tuple[torch.Tensor, torch.Tensor]:
    r = dct_rank(n, keep)
    if r < 1:
        raise ValueError(f"keep, x: keep={keep} keeps no DCT coefficient of x's size-{n} axis "
                         f"(int({n} * keep) = 0); use keep >= {1 / n:.4g} or a larger image")
    k = torch.arange(r, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None, :]
    rows = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    rows[0] = math.sqrt(1.0 / n)
    return rows, torch.arange(r, dtype=torch.float64)


def _fourier_rows(n: int, keep: float) -> tuple[torch.Tensor, torch.Tensor]:
    i = torch.arange(n, dtype=torch.int64)
    rows, freqs = [torch.full((n,), math.sqrt(1.0 / n), dtype=torch.float64)], [0]
    for k in range(1, fft_radius(n, keep) + 1):
        angle = ((k * i) % n).to(torch.float64) * (2 * math.pi / n)  # reduced mod n: exact arguments
        if 2 * k == n:  # Nyquist: (-1)^i, its own mirror, no sine
            rows.append(torch.cos(angle) * math.sqrt(1.0 / n))
            freqs.append(k)
        else:
            rows += [torch.cos(angle) * math.sqrt(2.0 / n), torch.sin(angle) * math.sqrt(2.0 / n)]
            freqs += [k, k]
    return torch.stack(rows), torch.tensor(freqs, dtype=torch.float64)


def axis_basis(n: int, keep: float, basis: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, freqs): the kept orthonormal basis rows of a size-n axis, float64 [r, n], and
    each row's |frequency| index (DCT index k, or DFT |k|)."""
    if n < 1:
        raise ValueError(f"size: expected a positive axis length, got {n}")
    return (_dct_rows if basis == "dct" else _fourier_rows)(n, keep)


def projector(n: int, keep: float = 0.3, basis: str = "dct") -> torch.Tensor:
    """P = R^T R, float64 [n, n]: the square mask's projector along a size-n axis."""
    keep = check_options(keep, basis, "square")
    rows, _ = axis_basis(n, keep, basis)
    return rows.T @ rows


def disk_mask(h: int, w: int, keep: float, basis: str) -> torch.Tensor:
    """0/1 mask over the kept coefficients [r_H, r_W] for shape='disk' (see module doc)."""
    _, fh = axis_basis(h, keep, basis)
    _, fw = axis_basis(w, keep, basis)
    if basis == "dct":  # (k1 / r_H)^2 + (k2 / r_W)^2 < 1, exactly, in integers
        rh, rw = dct_rank(h, keep), dct_rank(w, keep)
        k1, k2 = fh.to(torch.int64)[:, None], fw.to(torch.int64)[None, :]
        return ((k1 * rw) ** 2 + (k2 * rh) ** 2 < (rh * rw) ** 2).to(torch.float64)
    inside = (2 * fh[:, None] / h) ** 2 + (2 * fw[None, :] / w) ** 2
    return (inside <= keep * keep + _EPS).to(torch.float64)


def _build_factors(h: int, w: int, keep: float, basis: str, shape: str, device: torch.device):
    rows = axis_basis(h, keep, basis)[0].to(device=device, dtype=torch.float32)
    cols = axis_basis(w, keep, basis)[0].to(device=device, dtype=torch.float32)
    mask = None
    if shape == "disk":
        mask = disk_mask(h, w, keep, basis).to(device=device, dtype=torch.float32)
    return rows, cols, mask


_factors = lru_cache(maxsize=64)(_build_factors)


def lowpass_factors(h: int, w: int, keep: float = 0.3, basis: str = "dct",
                    shape: str = "square", device: torch.device | str = "cpu"):
    """(rows [r_H, H], cols [r_W, W], mask [r_H, r_W] or None), float32 on device: the
    arguments of torch.ops.poisonkit.lowpass. Cached and shared: do not modify them."""
    keep = check_options(keep, basis, shape)
    if torch.compiler.is_compiling():  # traced into the graph (constant-folded), not cached
        return _build_factors(int(h), int(w), keep, basis, shape, torch.device(device))
    return _factors(int(h), int(w), keep, basis, shape, torch.device(device))
