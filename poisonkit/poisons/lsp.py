"""LSP: linearly separable synthetic perturbations (Yu et al., KDD 2022; DESIGN 3.6).

The reference (dayu11/Availability-Attacks-Create-Shortcuts, synthetic_perturbations/
cifar_train.py) draws one point per training image with sklearn's make_classification
(F = (H/patch)(W/patch)C features, all informative, class_sep 10, one cluster per class),
reshapes it to [H/patch, W/patch, C], repeats every value over a patch x patch block,
scales it to an L2 norm of sqrt(C H W) * 6/255, adds it to the [0, 1] image, clips and
stores uint8 by truncation. Here each point is drawn from (key, sample index, class) through
Philox (`poisonkit.ops.lsp_poison`), so the poison needs no stored array and is the same in
any batch, worker or backend.
"""
from __future__ import annotations

import math

import torch

from .. import ops
from ..keys import philox_key
from .base import Poison

DEFAULT_EPS = 6 / 255  # the reference's --eps 6 (its L2 bound is eps * sqrt(C H W))


def lsp_features(channels: int, height: int, width: int, patch: int) -> int:
    """F, the point's dimension, for an image size; patch must divide it."""
    if height % patch or width % patch:
        raise ValueError(f"patch: expected a divisor of the image size {height}x{width}, got "
                         f"{patch}")
    return (height // patch) * (width // patch) * channels


class LSPPoison(Poison):
    """Adds to each image the LSP perturbation of (key, its sample index, its class).

    A `Poison` (poisonkit.poisons.base): call it on a sample or on ``(images, labels,
    indices)`` (the output keeps the input's structure; ``poison_batch`` returns the tensor).
    uint8 output is truncated (as the reference stores it), float32 output clipped to [0, 1].
    Apply it to the stored image before any augmentation. key: the owner's secret, 128
    random bits by default (it also draws the class centres and mixing matrices); ratio:
    the key-derived share of samples poisoned.
    """

    needs_indices = True

    def __init__(self, num_classes: int = 10, *, key: int | None = None, patch: int = 8,
                 eps: float = DEFAULT_EPS, class_sep: float = 10.0, ratio: float = 1.0,
                 labels_getter="default", indices_getter="default"):
        super().__init__(num_classes, ratio=ratio, key=key, labels_getter=labels_getter,
                         indices_getter=indices_getter)
        if isinstance(patch, bool) or not isinstance(patch, int) or patch < 1:
            raise ValueError(f"patch: expected a positive int, got {patch!r}")
        for name, value in (("eps", eps), ("class_sep", class_sep)):
            if (isinstance(value, bool) or not isinstance(value, (int, float))
                    or not math.isfinite(value) or value <= 0):
                raise ValueError(f"{name}: expected a positive finite number, got {value!r}")
        self.patch, self.eps, self.class_sep = patch, float(eps), float(class_sep)
        self._tables: dict = {}  # (features, device) -> (centres, mixing)

    @property
    def philox_key(self) -> int:
        """The 64-bit key the kernels draw with (keys.philox_key)."""
        return philox_key(self.key)

    def tables(self, features: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """The class centres [K, F] and mixing matrices [K, F, F] on device (cached; drawn by
        lsp_classes, finite, so the ops are told not to rescan them on every call)."""
        cache = (features, torch.device(device))
        if cache not in self._tables:
            centres, mixing = ops.lsp_classes(self.philox_key, self.num_classes, features,
                                              self.class_sep)
            self._tables[cache] = (centres.to(device), mixing.to(device))
        return self._tables[cache]

    def perturbation(self, labels: torch.Tensor, indices: torch.Tensor, channels: int,
                     height: int, width: int) -> torch.Tensor:
        """float32 [N, channels, height, width] perturbations on labels' device."""
        tables = self.tables(lsp_features(channels, height, width, self.patch), labels.device)
        return ops.lsp_generate(*tables, labels, indices, self.philox_key, channels, height, width,
                                self.patch, self.eps, check_tables=False)

    def apply(self, images: torch.Tensor, labels: torch.Tensor,
              indices: torch.Tensor) -> torch.Tensor:
        _, c, h, w = images.shape
        tables = self.tables(lsp_features(c, h, w, self.patch), images.device)
        return ops.lsp_poison(images, *tables, labels, indices, self.philox_key, self.patch,
                              self.eps, check_tables=False)

    def extra_repr(self) -> str:
        # Never the key: a repr ends up in logs.
        return (f"num_classes={self.num_classes}, patch={self.patch}, eps={self.eps:.6g}, "
                f"class_sep={self.class_sep}")
