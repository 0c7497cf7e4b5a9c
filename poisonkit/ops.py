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


def project_out(x: torch.Tensor, Q: torch.Tensor, clamp: bool = False) -> torch.Tensor:
    """Orthogonal projection defense: removes from every image its component in span(Q).

    x: uint8 [0, 255] or float32 [0, 1], NCHW (or CHW for one image). Q: float32 [D, K]
    with D = C * H * W, orthonormal columns (the op computes x - Q Q^T x for any Q; it is a
    projection only when Q^T Q = I). Images are taken in [0, 1] units (uint8 / 255).
    Returns float32: the projected images leave [0, 1] (negative values and values above 1
    are expected; the reference does not re-clip). clamp=True returns x's dtype instead,
    clamped to [0, 1] (uint8: rounded to nearest and saturated).
    """
    if not isinstance(x, torch.Tensor) or not isinstance(Q, torch.Tensor):
        raise TypeError("project_out: x and Q must be torch.Tensors")
    if x.dim() == 3:
        return project_out(x.unsqueeze(0), Q, clamp).squeeze(0)
    return torch.ops.poisonkit.project_out.default(x, Q, clamp)


@torch.library.register_fake("poisonkit::project_out")
def _project_out_fake(x, Q, clamp):
    torch._check(x.dim() == 4, lambda: "project_out: x must be NCHW")
    torch._check(Q.dim() == 2 and Q.shape[0] == x.shape[1] * x.shape[2] * x.shape[3],
                 lambda: "project_out: Q must be [C*H*W, K]")
    return torch.empty(x.shape, dtype=x.dtype if clamp else torch.float32, device=x.device)
