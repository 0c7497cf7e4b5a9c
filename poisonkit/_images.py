"""Image plumbing shared by the transforms: accept PIL images, plain tensors and
torchvision tv_tensors, hand the ops a plain CHW/NCHW tensor, and give results back in the
input's type."""
from __future__ import annotations

from typing import Callable

import PIL.Image
import torch
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as F


def as_image_tensor(inpt) -> tuple[torch.Tensor, Callable[[torch.Tensor], object]]:
    """Returns (plain tensor, rewrap) where rewrap turns a result back into inpt's type."""
    if isinstance(inpt, PIL.Image.Image):
        image = inpt if inpt.mode in ("L", "RGB") else inpt.convert("RGB")
        return F.pil_to_tensor(image), F.to_pil_image
    if isinstance(inpt, torch.Tensor):
        plain = inpt.as_subclass(torch.Tensor)
        if isinstance(inpt, tv_tensors.TVTensor):
            return plain, lambda out: tv_tensors.wrap(out, like=inpt)
        return plain, lambda out: out
    raise TypeError(f"image: expected a PIL image or a CHW/NCHW tensor, got {type(inpt).__name__}")


def batch_size_of(image: torch.Tensor) -> int:
    """Number of images in a CHW (1) or NCHW (N) tensor."""
    if image.dim() == 3:
        return 1
    if image.dim() == 4:
        return image.shape[0]
    raise ValueError(f"image: expected CHW or NCHW, got shape {tuple(image.shape)}")


def per_image(weights: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Drops the batch dim of per-image weights [1, ...] when image is a single CHW image."""
    return weights[0] if image.dim() == 3 else weights
