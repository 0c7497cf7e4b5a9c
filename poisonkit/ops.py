"""Thin wrappers over torch.ops.poisonkit.* with fake (meta) kernels for torch.compile.

Every op takes uint8 images in [0, 255] or float32 images in [0, 1], NCHW batches or CHW
single images, and returns the input's dtype.
"""
from __future__ import annotations

import torch

from . import _C  # noqa: F401  (loads the library: runs the TORCH_LIBRARY registrations)

PADDINGS = ("zeros", "reflect", "replicate", "valid")


def cuda_available() -> bool:
    """True when the extension was built with its CUDA kernels."""
    return torch._C._dispatch_has_kernel_for_dispatch_key("poisonkit::filter2d", "CUDA")


def filter2d(x: torch.Tensor, weights: torch.Tensor, padding: str = "zeros",
             normalize: str = "none", rounding: str = "nearest", clamp: bool = True) -> torch.Tensor:
    """Per-image depthwise 2-D filter (cross-correlation, as torch.conv2d).

    x: uint8 or float32, NCHW (or CHW for one image). weights: float32 [N, kh, kw] (one
    kernel per image, shared by its channels) or [N, C, kh, kw]; for a CHW image drop N.
    Kernel sizes are odd, 1 to 7. padding: 'zeros', 'reflect', 'replicate' or 'valid'
    (no padding: the output shrinks by kh-1, kw-1). normalize='max' divides each image by
    its own global max over C, H, W (the CUDA poison). uint8 output rounds half up, or
    truncates with rounding='truncate' (the CUDA poison's reference); float output is
    clamped to [0, 1] unless clamp=False.
    """
    if not isinstance(x, torch.Tensor) or not isinstance(weights, torch.Tensor):
        raise TypeError("filter2d: x and weights must be torch.Tensors")
    if x.dim() == 3:
        if weights.dim() not in (2, 3):
            raise ValueError("filter2d: for a CHW image, weights must be [kh, kw] or [C, kh, kw], "
                             f"got shape {tuple(weights.shape)}")
        return filter2d(x.unsqueeze(0), weights.unsqueeze(0), padding, normalize, rounding,
                        clamp).squeeze(0)
    return torch.ops.poisonkit.filter2d.default(x, weights, padding, normalize, rounding, clamp)


@torch.library.register_fake("poisonkit::filter2d")
def _filter2d_fake(x, weights, padding, normalize, rounding, clamp):
    torch._check(x.dim() == 4, lambda: "filter2d: x must be NCHW")
    n, c, h, w = x.shape
    kh, kw = weights.shape[-2:]
    if padding == "valid":
        h, w = h - kh + 1, w - kw + 1
    return x.new_empty((n, c, h, w))


def lowpass(x: torch.Tensor, keep: float = 0.30, basis: str = "dct", shape: str = "square",
            clamp: bool = True) -> torch.Tensor:
    """Frequency low-pass per channel (the FF of RSK+FF): keep the low frequencies of an
    orthonormal DCT-II (basis='dct') or of the DFT (basis='fft'), inside a square or disk
    mask, and invert. keep: in (0, 1]; the DCT square keeps int(H * keep) x int(W * keep)
    coefficients as the reference; see poisonkit.defenses.lowpass for the exact masks.

    x: uint8 or float32, NCHW (or CHW), any H and W. uint8 output is rounded to nearest and
    saturated; float output is clamped to [0, 1] unless clamp=False. The basis matrices
    are built once per (size, keep, basis, shape, device) and cached.
    """
    from .defenses.lowpass import lowpass_factors
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"lowpass: x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 3:
        return lowpass(x.unsqueeze(0), keep, basis, shape, clamp).squeeze(0)
    if x.dim() != 4:
        raise ValueError(f"lowpass: x must be CHW or NCHW, got shape {tuple(x.shape)}")
    rows, cols, mask = lowpass_factors(x.shape[-2], x.shape[-1], keep, basis, shape, x.device)
    return torch.ops.poisonkit.lowpass.default(x, rows, cols, mask, bool(clamp))


@torch.library.register_fake("poisonkit::lowpass")
def _lowpass_fake(x, rows, cols, mask, clamp):
    torch._check(x.dim() == 4, lambda: "lowpass: x must be NCHW")
    return x.new_empty(x.shape)
