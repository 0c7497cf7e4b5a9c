"""Procedural stand-in images, for tests and for running offline without a dataset."""
from __future__ import annotations

import torch

from .memory import ImageDataset


def synthetic_images(n: int = 64, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Procedural stand-in images, uint8 NCHW, and 10-class labels, for when no dataset is
    available offline. The class decides the shape drawn over a random colour gradient
    (disk, square, ring, horizontal bar, vertical bar; classes 5-9 draw it darker rather
    than lighter than the background), so the classes can be learnt; position, size and
    colours are random."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    labels = torch.arange(n) % 10
    base = 0.25 + 0.5 * torch.rand(n, 3, 1, 1, generator=g)
    slope = 0.4 * (torch.rand(n, 3, 2, generator=g) - 0.5)
    img = base + slope[..., 0, None, None] * yy + slope[..., 1, None, None] * xx
    cy, cx = 0.3 + 0.4 * torch.rand(2, n, 1, 1, generator=g)
    r = 0.12 + 0.1 * torch.rand(n, 1, 1, generator=g)
    dy, dx = (yy - cy).abs(), (xx - cx).abs()
    dist = (dy ** 2 + dx ** 2).sqrt()
    shapes = torch.stack([dist < r, torch.maximum(dy, dx) < r, (dist < r) & (dist > 0.55 * r),
                          (dy < 0.35 * r) & (dx < 1.8 * r), (dx < 0.35 * r) & (dy < 1.8 * r)], 1)
    mask = shapes[torch.arange(n), labels % 5].unsqueeze(1)
    shift = (0.2 + 0.3 * torch.rand(n, 3, 1, 1, generator=g)) * torch.where(labels < 5, 1.0, -1.0)[:, None, None, None]
    img = torch.where(mask, img + shift, img)
    return (img.clamp(0, 1) * 255).round().to(torch.uint8), labels


def synthetic_dataset(train: int = 2000, test: int = 500, size: int = 32) -> ImageDataset:
    """The procedural stand-in (see synthetic_images) as a dataset with train/test splits."""
    xtr, ytr = synthetic_images(train, size, seed=0)
    xte, yte = synthetic_images(test, size, seed=1)
    return ImageDataset(xtr, ytr, xte, yte, 10, "procedural images (offline fallback)")
