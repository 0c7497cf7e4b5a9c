"""Pixel constancy: the one-pixel shortcut (OPS, DESIGN 3.6) sets one pixel of every image
of a class to a fixed colour, so that pixel's value is constant within the class. Natural
images have no such pixel: within a class every position varies.

Statistic: per class, the smallest standard deviation over positions of a pixel's values
(0-255 units, root mean square over channels), from the same one-pass moments as the OPS
search (poisonkit.ops.one_pixel_moments); the verdict looks at the median over classes.
"""
from __future__ import annotations

import torch

from ..poisons.one_pixel import search_moments

# Median over classes of the smallest pixel std on the clean CIFAR-10 10k subset, measured
# here: 52.7 with 1000 images per class (49.8 with 200, 32.1 with 20).
NATURAL_MIN_STD = 52.7
# Flagged below this: a pixel that (nearly) never changes within a class. A poison applied
# to part of a class only (ratio < 1) keeps the pixel varying and is not flagged.
FLAG_MIN_STD = 2.0


def pixel_constancy(x: torch.Tensor, y: torch.Tensor, num_classes: int,
                    batch_size: int = 4096) -> dict:
    """The smallest within-class pixel std per class and where it is (row, col)."""
    batches = ((x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(x), batch_size))
    sums, squares, counts, unit = search_moments(batches, num_classes)
    n = counts.double().clamp_min(1)[:, None, None, None]
    var = (squares / n - (sums / n) ** 2).clamp_min(0)  # [K, C, H, W]
    std = var.mean(1).sqrt() * (255.0 / unit)  # RMS over channels, 0-255 units
    flat = std.flatten(1)
    lowest, where = flat.min(1)
    width = x.shape[-1]
    return {"min_std": lowest.tolist(),
            "min_std_pixel": [[int(p) // width, int(p) % width] for p in where],
            "median_min_std": float(lowest.median())}
