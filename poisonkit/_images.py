"""Image plumbing shared by the transforms and poisons: which inputs are images, which
pass through, which are refused, and how a tensor kernel is applied to a PIL image or a
tv_tensors.Image (unwrap, run on the plain CHW/NCHW tensor, wrap back)."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import PIL.Image
import torch
from torchvision import tv_tensors
from torchvision.transforms.v2 import Transform
from torchvision.transforms.v2 import functional as F
from torchvision.transforms.v2._utils import is_pure_tensor

# Inputs the transforms change; everything else in a sample passes through.
IMAGE_TYPES = (tv_tensors.Image, PIL.Image.Image, is_pure_tensor)
# Geometry/labels that image filters and poisons must leave bit-identical.
PASSTHROUGH_TYPES = (tv_tensors.Mask, tv_tensors.BoundingBoxes, tv_tensors.KeyPoints)
_CHANNELS = (1, 3, 4)


def check_layout(x: torch.Tensor, name: str = "image") -> None:
    """CHW or NCHW; refuses HWC / NHWC tensors (channel-like last dim, other first dim)."""
    if x.dim() not in (3, 4):
        raise ValueError(f"{name}: expected a CHW image or an NCHW batch, got shape {tuple(x.shape)}")
    c = x.shape[-3]
    if x.shape[-1] in _CHANNELS and c not in _CHANNELS:
        raise ValueError(f"{name}: got shape {tuple(x.shape)}, which looks channels-last (HWC); "
                         "expected CHW / NCHW: permute it (x.permute(2, 0, 1)) or use "
                         "torchvision.transforms.v2.functional.to_image")


def reject_unsupported(inpt: Any, name: str = "image") -> None:
    """Raises for inputs a transform must not silently pass through: numpy arrays (convert
    with v2.functional.to_image) and channels-last image tensors."""
    if isinstance(inpt, np.ndarray) and inpt.ndim >= 2:
        raise TypeError(f"{name}: numpy arrays are not accepted (shape {inpt.shape}); convert "
                        "with torchvision.transforms.v2.functional.to_image (HWC -> CHW tensor)")
    if isinstance(inpt, tv_tensors.Image) or is_pure_tensor(inpt):
        if inpt.dim() >= 3:
            check_layout(inpt, name)


class ImageTransform(Transform):
    """A v2 Transform that changes images (tv_tensors.Image, PIL, the sample's plain
    tensor) and passes Masks, BoundingBoxes, KeyPoints and labels through untouched."""

    _transformed_types = IMAGE_TYPES

    def check_inputs(self, flat_inputs: list[Any]) -> None:
        for inpt in flat_inputs:
            reject_unsupported(inpt)


def on_tv_image(kernel: Callable) -> Callable:
    """kernel over plain tensors -> kernel over tv_tensors.Image (same subclass out)."""
    def wrapper(inpt, *args, **kwargs):
        return tv_tensors.wrap(kernel(inpt.as_subclass(torch.Tensor), *args, **kwargs), like=inpt)
    return wrapper


def on_pil(kernel: Callable) -> Callable:
    """kernel over plain uint8 tensors -> kernel over PIL images (L or RGB; other modes are
    converted to RGB)."""
    def wrapper(inpt, *args, **kwargs):
        image = inpt if inpt.mode in ("L", "RGB") else inpt.convert("RGB")
        return F.to_pil_image(kernel(F.pil_to_tensor(image), *args, **kwargs))
    return wrapper


def batch_size_of(image) -> int:
    """Number of images in a PIL image (1), a CHW (1) or an NCHW (N) tensor."""
    if isinstance(image, PIL.Image.Image):
        return 1
    check_layout(image)
    return 1 if image.dim() == 3 else image.shape[0]


def as_plain_tensor(inpt) -> torch.Tensor:
    """A PIL image or an image tensor (tv_tensor or plain) as a plain CHW/NCHW tensor."""
    if isinstance(inpt, PIL.Image.Image):
        return F.pil_to_tensor(inpt if inpt.mode in ("L", "RGB") else inpt.convert("RGB"))
    if isinstance(inpt, torch.Tensor):
        reject_unsupported(inpt)
        return inpt.as_subclass(torch.Tensor)
    reject_unsupported(inpt)
    raise TypeError(f"image: expected a PIL image or a CHW/NCHW tensor, got {type(inpt).__name__}")
