"""JPEG compression as a defense (quality 10 against availability poisons): encode and
decode every image through torchvision.io, on CPU or CUDA tensors."""
from __future__ import annotations

import torch
from torchvision.io import decode_jpeg, encode_jpeg


def jpeg_roundtrip(images: torch.Tensor, quality: int = 10) -> torch.Tensor:
    """uint8 NCHW (1 or 3 channels) -> uint8 NCHW after a JPEG round trip at `quality`."""
    if not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ValueError(f"quality: expected an int from 1 to 100, got {quality!r}")
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images: expected uint8 NCHW with 1 or 3 channels, got "
                         f"{images.dtype} {tuple(images.shape)}")
    if len(images) == 0:
        return images.clone()
    # CUDA tensors are encoded on the GPU (nvjpeg); the decoder reads its bytes from host memory.
    encoded = [e.cpu() for e in encode_jpeg(list(images.contiguous()), quality=quality)]
    mode = "GRAY" if images.shape[1] == 1 else "RGB"
    return torch.stack(decode_jpeg(encoded, mode=mode, device=images.device))
