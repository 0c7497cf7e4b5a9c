"""The in-memory layout every dataset source is loaded into: train and test splits of
uint8 NCHW images and int64 labels."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ImageDataset:
    """Train and test splits in memory: images uint8 NCHW, labels int64 [N]."""
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    source: str

    def __post_init__(self):
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] not in (1, 3) or len(x) == 0:
                raise ValueError(f"data: x_{split} must be non-empty uint8 [N, C, H, W] with C 1 or 3, "
                                 f"got {x.dtype} {tuple(x.shape)}")
            if tuple(y.shape) != (len(x),):
                raise ValueError(f"data: y_{split} must have shape ({len(x)},), got {tuple(y.shape)}")
            if y.min() < 0 or y.max() >= self.num_classes:
                raise ValueError(f"data: y_{split} must hold class indices in [0, {self.num_classes}), "
                                 f"got values in [{int(y.min())}, {int(y.max())}]")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(f"data: train and test images differ in shape: "
                             f"{tuple(self.x_train.shape[1:])} vs {tuple(self.x_test.shape[1:])}")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])

    def subset(self, train: int | None = None, test: int | None = None, seed: int = 0) -> "ImageDataset":
        """A class-balanced-in-expectation random subset (the .npz files are sorted by class,
        so a prefix would drop whole classes)."""
        g = torch.Generator().manual_seed(seed)
        pick = lambda n, k: torch.randperm(n, generator=g)[:k].sort().values if k is not None else torch.arange(n)
        i, j = pick(len(self.x_train), train), pick(len(self.x_test), test)
        return ImageDataset(self.x_train[i], self.y_train[i], self.x_test[j], self.y_test[j],
                            self.num_classes, f"{self.source} (subset {len(i)}/{len(j)})")
