"""OPS: the one-pixel shortcut (Wu et al., ICLR 2023; DESIGN 3.6).

The reference (cychomatica/One-Pixel-Shotcut, perturb.py `pixel_search`) scores, per class
in order, every (position, corner colour in {0,1}^C) by mean / std of |colour - pixel| over
the class's [0, 1] images, takes the best pair not taken by an earlier class, and sets that
pixel of every image of the class to the colour. Here the search is one pass of a kernel over
the dataset (`poisonkit.ops.one_pixel_moments`, batch by batch) plus the scoring and greedy
selection in C++ (`one_pixel_search`); applying it is a per-sample op.
"""
from __future__ import annotations

from typing import Iterable

import torch

from .. import ops
from .base import Poison, check_every_class


def search_moments(batches: Iterable[tuple[torch.Tensor, torch.Tensor]], num_classes: int):
    """Sums, squares and counts of the OPS search over (images NCHW, labels) batches, and
    the unit of the images (255 for uint8, 1 for float32; batches must agree)."""
    sums = squares = counts = None
    dtype = None
    for x, y in batches:
        if dtype is not None and x.dtype != dtype:
            raise TypeError(f"images: every batch must have one dtype, got {dtype} and {x.dtype}")
        dtype = x.dtype
        s, q, c = ops.one_pixel_moments(x, torch.as_tensor(y, device=x.device).long(), num_classes)
        if sums is None:
            sums, squares, counts = s, q, c
        else:
            if s.shape != sums.shape:
                raise ValueError(f"images: every batch must have one image size, got "
                                 f"{tuple(sums.shape[1:])} and {tuple(s.shape[1:])}")
            sums, squares, counts = sums + s, squares + q, counts + c
    if sums is None:
        raise ValueError("images: no batches to search")
    return sums, squares, counts, 255.0 if dtype == torch.uint8 else 1.0


def colour_bits(colour: torch.Tensor, channels: int) -> torch.Tensor:
    """Colour numbers [K] -> float32 [K, C] in {0, 1}; channel c is bit C-1-c (the
    reference's pixel_value // 2 // 2, // 2 % 2, % 2 for C = 3)."""
    shifts = torch.arange(channels - 1, -1, -1)
    return ((colour[:, None] >> shifts) & 1).to(torch.float32)


class OnePixelShortcut(Poison):
    """Sets pixel (rows[k], cols[k]) of every image of class k to colours[k].

    Build it with `OnePixelShortcut.search(images, labels)` (the reference's search) or
    from known pixels. A `Poison` (poisonkit.poisons.base): call it on a sample or on
    ``(images, labels[, indices])`` (the output keeps the input's structure;
    ``poison_batch`` returns the tensor). The index is used only to pick the poisoned share
    when ratio < 1 (the poison itself is class-wise). uint8 images get 0 or 255, float32
    images 0.0 or 1.0. ratio, key, getters: as `Poison`.
    """

    needs_indices = False

    def __init__(self, rows: torch.Tensor, cols: torch.Tensor, colours: torch.Tensor, *,
                 ratio: float = 1.0, key: int | None = None, labels_getter="default",
                 indices_getter="default"):
        rows, cols = torch.as_tensor(rows).long(), torch.as_tensor(cols).long()
        colours = torch.as_tensor(colours, dtype=torch.float32)
        if rows.dim() != 1 or rows.shape != cols.shape or len(rows) < 1:
            raise ValueError(f"rows, cols: expected two [K] tensors with K >= 1, got shapes "
                             f"{tuple(rows.shape)} and {tuple(cols.shape)}")
        if colours.dim() != 2 or colours.shape[0] != len(rows):
            raise ValueError(f"colours: expected [K = {len(rows)}, C], got {tuple(colours.shape)}")
        if (rows < 0).any() or (cols < 0).any():
            raise ValueError("rows, cols: expected non-negative pixel coordinates")
        if not torch.isfinite(colours).all() or colours.min() < 0 or colours.max() > 1:
            raise ValueError("colours: expected values in [0, 1]")
        super().__init__(len(rows), ratio=ratio, key=key, labels_getter=labels_getter,
                         indices_getter=indices_getter)
        self.register_buffer("rows", rows)
        self.register_buffer("cols", cols)
        self.register_buffer("colours", colours)
        self._cache: dict = {}

    @classmethod
    def search(cls, images: torch.Tensor, labels: torch.Tensor, num_classes: int | None = None,
               batch_size: int = 4096, **options) -> "OnePixelShortcut":
        """The reference's pixel_search (sparsity 1) over a dataset: images uint8 or float32
        [N, C, H, W] (square), labels [N]. Every class needs at least one image. options:
        the poison's ratio, key and getters."""
        labels = torch.as_tensor(labels).long()
        if num_classes is None:
            num_classes = int(labels.max()) + 1
        if len(images) != len(labels):
            raise ValueError(f"labels: expected {len(images)} labels, got {len(labels)}")
        check_every_class(labels, num_classes, "the pixel search needs images of every class")
        batches = ((images[i:i + batch_size], labels[i:i + batch_size])
                   for i in range(0, len(images), batch_size))
        return cls.from_moments(*search_moments(batches, num_classes), **options)

    @classmethod
    def from_moments(cls, sums, squares, counts, unit: float, **options) -> "OnePixelShortcut":
        """The search's choice from search_moments' output (sums [K, C, H, W], ...)."""
        _, choice = ops.one_pixel_search(sums, squares, counts, unit)
        channels, height = sums.shape[1], sums.shape[2]
        position, colour = choice >> channels, choice & ((1 << channels) - 1)
        return cls(position // height, position % height, colour_bits(colour, channels),
                   **options)

    def apply(self, images: torch.Tensor, labels: torch.Tensor,
              indices: torch.Tensor | None = None) -> torch.Tensor:
        return ops.one_pixel_apply(images, labels, *self._pixels(images))

    def _pixels(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(positions row * W + col, colours) on the images' device, cached per size (a
        DataLoader calls the poison once per sample)."""
        h, w = images.shape[-2:]
        cache = (h, w, images.device)
        if cache not in self._cache:
            if (self.rows >= h).any() or (self.cols >= w).any():
                raise ValueError(f"image: the poison's pixels lie outside a {h}x{w} image")
            self._cache[cache] = ((self.rows * w + self.cols).to(images.device),
                                  self.colours.to(images.device))
        return self._cache[cache]

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}"
