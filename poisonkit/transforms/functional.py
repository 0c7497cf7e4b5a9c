"""Functional layer of poisonkit's transforms, dispatching per input type as
torchvision.transforms.v2.functional does: each functional looks up a kernel for the
input's type (MRO order) in a registry. Plain CHW/NCHW tensors, tv_tensors.Image and PIL
images are filtered; Mask, BoundingBoxes and KeyPoints are returned untouched; numpy
arrays and channels-last (HWC) tensors are refused with an error saying how to convert.

``register_kernel(functional, cls)`` adds a kernel for another type (e.g. a custom
tv_tensor), as torchvision's register_kernel does for its own functionals.
"""
from __future__ import annotations

from typing import Any, Callable

import PIL.Image
import torch
from torchvision import tv_tensors

from .. import ops
from .._images import PASSTHROUGH_TYPES, check_layout, on_pil, on_tv_image, reject_unsupported
from ..defenses.sharpen import rsk_kernels as random_sharpen_kernels
from ..poisons.classwise_blur import blur_images

__all__ = ["register_kernel", "sharpen", "random_sharpen_kernels", "lowpass", "sharpen_lowpass",
           "project_out", "classwise_blur", "ar_poison", "poison"]

_REGISTRY: dict[Callable, dict[type, Callable]] = {}


def register_kernel(functional: Callable, input_type: type) -> Callable[[Callable], Callable]:
    """Decorator: registers kernel(inpt, *args, **kwargs) for inputs of input_type."""
    def decorator(kernel: Callable) -> Callable:
        _REGISTRY.setdefault(functional, {})[input_type] = kernel
        return kernel
    return decorator


def _dispatch(functional: Callable, inpt: Any, *args, **kwargs) -> Any:
    registry = _REGISTRY[functional]
    for cls in type(inpt).__mro__:
        if cls in registry:
            return registry[cls](inpt, *args, **kwargs)
        if cls is tv_tensors.TVTensor:  # a custom tv_tensor never falls back to the plain kernel
            break
    reject_unsupported(inpt)
    raise TypeError(f"{functional.__name__}: expected a PIL image, a tv_tensors.Image or a CHW/NCHW "
                    f"tensor, got {type(inpt).__name__}")


def _passthrough(inpt, *args, **kwargs):
    return inpt


def _image_kernel(functional: Callable) -> Callable[[Callable], Callable]:
    """Registers a plain-tensor kernel for tensors, tv_tensors.Image and PIL images, and
    the identity for Masks, BoundingBoxes and KeyPoints."""
    def decorator(kernel: Callable) -> Callable:
        def checked(x, *args, **kwargs):
            check_layout(x)
            return kernel(x, *args, **kwargs)
        register_kernel(functional, torch.Tensor)(checked)
        register_kernel(functional, tv_tensors.Image)(on_tv_image(checked))
        register_kernel(functional, PIL.Image.Image)(on_pil(checked))
        for cls in PASSTHROUGH_TYPES:
            register_kernel(functional, cls)(_passthrough)
        return kernel
    return decorator


def check_padding(padding: str) -> str:
    if padding not in ops.PADDINGS:
        raise ValueError(f"padding: expected one of {ops.PADDINGS}, got {padding!r}")
    return padding


def _per_image(weights: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Kernels [kh, kw] (shared) or [N, ...] (one per image) as filter2d wants them for x."""
    if x.dim() == 3:
        return weights[0] if weights.dim() == 3 and weights.shape[0] == 1 else weights
    return weights.expand(x.shape[0], *weights.shape) if weights.dim() == 2 else weights


# ---- defenses ----

def sharpen(inpt, kernels: torch.Tensor, padding: str = "valid"):
    """Depthwise sharpening: kernels [kh, kw] for every image or [N, kh, kw] one per image
    (SSK: defenses.sharpen.ssk_kernel; RSK: random_sharpen_kernels). Float output is
    clamped to [0, 1]; 'valid' shrinks by kh-1, kw-1 (the reference)."""
    return _dispatch(sharpen, inpt, kernels, padding)


@_image_kernel(sharpen)
def sharpen_image(x: torch.Tensor, kernels: torch.Tensor, padding: str = "valid") -> torch.Tensor:
    return ops.filter2d(x, _per_image(kernels.to(x.device), x), padding=check_padding(padding))


def lowpass(inpt, keep: float = 0.30, basis: str = "dct", shape: str = "square", clamp: bool = True):
    """FF: keep the low frequencies of each channel (see poisonkit.ops.lowpass)."""
    return _dispatch(lowpass, inpt, keep, basis, shape, clamp)


@_image_kernel(lowpass)
def lowpass_image(x: torch.Tensor, keep: float = 0.30, basis: str = "dct", shape: str = "square",
                  clamp: bool = True) -> torch.Tensor:
    return ops.lowpass(x, keep, basis, shape, clamp)


def sharpen_lowpass(inpt, kernels: torch.Tensor, padding: str = "valid", keep: float = 0.30,
                    basis: str = "dct", shape: str = "square", restore_size: bool = False):
    """RSK+FF on one input: sharpen, then low-pass, in float [0, 1] with one rounding at
    the end for uint8. restore_size reflect-pads a 'valid' result back to the input size."""
    return _dispatch(sharpen_lowpass, inpt, kernels, padding, keep, basis, shape, restore_size)


@_image_kernel(sharpen_lowpass)
def sharpen_lowpass_image(x: torch.Tensor, kernels: torch.Tensor, padding: str = "valid",
                          keep: float = 0.30, basis: str = "dct", shape: str = "square",
                          restore_size: bool = False) -> torch.Tensor:
    unit = x.float() / 255.0 if x.dtype == torch.uint8 else x
    y = ops.lowpass(sharpen_image(unit, kernels, padding), keep, basis, shape, True)
    if restore_size:
        y = _reflect_pad_to(y, x.shape[-2], x.shape[-1])
    if x.dtype == torch.uint8:  # y is in [0, 1]: round half up, as the kernels do
        y = torch.floor(y * 255.0 + 0.5).to(torch.uint8)
    return y


def _reflect_pad_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Reflect-pads the last two dims of x up to height x width (extra row/col at the end)."""
    dh, dw = height - x.shape[-2], width - x.shape[-1]
    if dh == 0 and dw == 0:
        return x
    return torch.nn.functional.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2), mode="reflect")


def project_out(inpt, Q: torch.Tensor, clamp: bool = False):
    """Orthogonal projection x - Q Q^T x (see poisonkit.ops.project_out). PIL images are
    always clamped (they cannot hold values outside [0, 1])."""
    if isinstance(inpt, PIL.Image.Image):
        clamp = True
    return _dispatch(project_out, inpt, Q, clamp)


@_image_kernel(project_out)
def project_out_image(x: torch.Tensor, Q: torch.Tensor, clamp: bool = False) -> torch.Tensor:
    return ops.project_out(x, Q.to(x.device), clamp)


# ---- poisons ----

def classwise_blur(inpt, labels, kernels: torch.Tensor):
    """The CUDA poison's image op: blur each image with its class's kernel (kernels
    [K, k, k], labels int64 [N] or a scalar), divide by the image's max; uint8 truncates."""
    return _dispatch(classwise_blur, inpt, labels, kernels)


_image_kernel(classwise_blur)(blur_images)


def ar_poison(inpt, coeffs: torch.Tensor, labels, indices, key: int, crop: int = 4,
              eps: float = 1.0, p: float | str = 2):
    """The AR poison's image op (poisonkit.ops.ar_poison: coeffs [K, C, 3, 3], labels and
    indices [N] or scalars for one image, key the 64-bit Philox key)."""
    return _dispatch(ar_poison, inpt, coeffs, labels, indices, key, crop, eps, p)


_image_kernel(ar_poison)(ops.ar_poison)


def poison(inpt, transform, labels, indices=None):
    """Applies a poisonkit.poisons.base.Poison to one input (a CHW image or an NCHW batch)."""
    return _dispatch(poison, inpt, transform, labels, indices)


@_image_kernel(poison)
def poison_image(x: torch.Tensor, transform, labels, indices=None) -> torch.Tensor:
    return transform.poison_batch(x, labels, indices)
