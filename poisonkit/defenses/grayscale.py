"""Grayscale as a defense (ISS, 'going grayscale'), with the rounding of PIL's
Image.convert('L') that the reference's transforms.Grayscale(3) applies to PIL images:
L = (19595 R + 38470 G + 7471 B + 2^15) >> 16 (ITU-R 601-2 luma in 16-bit fixed point)."""
from __future__ import annotations

import torch


def pil_grayscale(images: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW RGB -> uint8 NCHW with 3 equal channels, bit-exact with PIL."""
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images: expected uint8 NCHW RGB, got {images.dtype} {tuple(images.shape)}")
    rgb = images.to(torch.int32)
    luma = (19595 * rgb[:, 0] + 38470 * rgb[:, 1] + 7471 * rgb[:, 2] + 0x8000) >> 16
    return luma.to(torch.uint8)[:, None].expand(-1, 3, -1, -1).contiguous()
