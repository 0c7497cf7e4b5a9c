"""Train-time augmentation on whole batches of tensors (on the training device): random
crop with zero padding and horizontal flip, as RandomCrop(32, padding=4) + RandomHorizontalFlip
do per image, but as two indexing operations per batch instead of a Python loop."""
from __future__ import annotations

import torch
import torch.nn.functional as F

# CIFAR-10 channel statistics, as the reference training scripts normalise.
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


def crop_flip(x: torch.Tensor, padding: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """x: NCHW float. Each image is zero-padded by `padding`, cropped back to HxW at a
    uniformly random offset and flipped left-right with probability 1/2."""
    n, c, h, w = x.shape
    dev = x.device
    padded = F.pad(x, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (n, 1), generator=generator).to(dev)
    dx = torch.randint(0, 2 * padding + 1, (n, 1), generator=generator).to(dev)
    flip = torch.rand(n, 1, generator=generator).to(dev) < 0.5
    cols = torch.arange(w, device=dev)
    cols = torch.where(flip, w - 1 - cols, cols) + dx                   # [n, w]
    rows = torch.arange(h, device=dev) + dy                             # [n, h]
    idx = torch.arange(n, device=dev)[:, None, None, None]
    ch = torch.arange(c, device=dev)[None, :, None, None]
    return padded[idx, ch, rows[:, None, :, None], cols[:, None, None, :]]


def normalize(x: torch.Tensor) -> torch.Tensor:
    """Channel-wise CIFAR normalisation of NCHW floats in [0, 1] (1 or 3 channels)."""
    mean = torch.tensor(CIFAR_MEAN[: x.shape[1]], device=x.device, dtype=x.dtype)
    std = torch.tensor(CIFAR_STD[: x.shape[1]], device=x.device, dtype=x.dtype)
    return (x - mean[:, None, None]) / std[:, None, None]
