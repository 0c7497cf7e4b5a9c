"""JPEG compression as a defense (quality 10 against availability poisons).

One codec on every device, so the defense does not depend on where the batch lives:
Pillow's libjpeg-turbo with Pillow's defaults (baseline, integer DCT, standard tables
scaled by `quality`, 4:2:0 chroma subsampling for RGB; 1-channel images coded as
grayscale JPEGs). CUDA batches are copied to the host, coded there and copied back, so a
GPU batch gets exactly the CPU result. torchvision's nvjpeg path is not used: it codes
4:4:4 (a milder defense at quality 10 than the 4:2:0 of its own CPU path), rejects
1-channel batches and encodes on a pooled stream that does not wait for the caller's
(pytorch/vision#8587, #9060); torchvision.io's codecs are also deprecated since 0.29.
"""
from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image


def _roundtrip_one(image_hwc: np.ndarray, quality: int) -> np.ndarray:
    """HWC uint8 (C = 1 or 3) -> the same shape after encoding and decoding."""
    pil = Image.fromarray(np.ascontiguousarray(image_hwc[..., 0] if image_hwc.shape[2] == 1
                                               else image_hwc))
    buf = io.BytesIO()
    pil.save(buf, format="JPEG", quality=quality)
    with Image.open(buf) as decoded:
        out = np.asarray(decoded.convert(pil.mode))
    return out.reshape(image_hwc.shape)


def jpeg_roundtrip(images: torch.Tensor, quality: int = 10) -> torch.Tensor:
    """uint8 NCHW (1 or 3 channels, any strides, CPU or CUDA) -> uint8 NCHW on the same
    device after a JPEG round trip at `quality` (1-100).

    On CUDA the device-to-host copy runs on the caller's current stream and blocks until
    the work queued before it has finished, so the images read are the ones the caller
    wrote; the result is copied back on that same stream."""
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ValueError(f"quality: expected an int from 1 to 100, got {quality!r}")
    if (not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4
            or images.shape[1] not in (1, 3)):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        dtype = images.dtype if isinstance(images, torch.Tensor) else ""
        raise ValueError(f"images: expected a uint8 NCHW tensor with 1 or 3 channels, got "
                         f"{dtype} {shape}")
    if images.shape[2] == 0 or images.shape[3] == 0:
        raise ValueError(f"images: expected a non-empty height and width, got {tuple(images.shape)}")
    if len(images) == 0:
        return images.clone()
    hwc = images.permute(0, 2, 3, 1).cpu().numpy()
    out = np.stack([_roundtrip_one(img, quality) for img in hwc])
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous().to(images.device)
