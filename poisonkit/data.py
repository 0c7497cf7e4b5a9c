"""Datasets: the .npz layout used across poisonkit (x_train uint8 NHWC, y_train int64,
x_test, y_test), found through an argument or $POISONKIT_DATA."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def data_path(path: str | os.PathLike | None = None) -> Path | None:
    """The dataset path: the argument, else $POISONKIT_DATA, else None."""
    chosen = path if path is not None else os.environ.get("POISONKIT_DATA")
    return Path(chosen) if chosen else None


def load_npz(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Loads an .npz dataset as tensors: images NCHW uint8, labels int64."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data: no such file {path}")
    with np.load(path) as f:
        missing = [k for k in NPZ_KEYS if k not in f]
        if missing:
            raise ValueError(f"data: {path} lacks arrays {missing}; expected {NPZ_KEYS}")
        out = {}
        for split in ("train", "test"):
            x, y = f[f"x_{split}"], f[f"y_{split}"]
            if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] not in (1, 3):
                raise ValueError(f"data: x_{split} must be uint8 [N, H, W, C] with C 1 or 3, "
                                 f"got {x.dtype} {x.shape}")
            if y.shape != (x.shape[0],):
                raise ValueError(f"data: y_{split} must have shape ({x.shape[0]},), got {y.shape}")
            out[f"x_{split}"] = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
            out[f"y_{split}"] = torch.from_numpy(y.astype(np.int64))
    return out


def synthetic_images(n: int = 64, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Procedural stand-in images (smooth colour gradients plus shapes), uint8 NCHW, and
    10-class labels, for when no dataset is available offline."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    labels = torch.arange(n) % 10
    base = torch.rand(n, 3, 1, 1, generator=g)
    slope = torch.rand(n, 3, 2, generator=g) - 0.5
    img = base + slope[..., 0, None, None] * yy + slope[..., 1, None, None] * xx
    cy, cx, r = torch.rand(3, n, 1, 1, generator=g)
    disk = ((yy - cy) ** 2 + (xx - cx) ** 2 < (0.1 + 0.2 * r) ** 2).unsqueeze(1)
    img = torch.where(disk, 1 - img, img)
    return (img.clamp(0, 1) * 255).round().to(torch.uint8), labels


class PoisonedDataset(torch.utils.data.Dataset):
    """base[i] = (image, label) poisoned on the fly by poison(image, label, i) (e.g. an
    ARPoison), so the poison depends on the sample index, not on the batch or worker."""

    def __init__(self, base, poison):
        self.base, self.poison = base, poison

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        image, label = self.base[index]
        return self.poison(image, label, index)
