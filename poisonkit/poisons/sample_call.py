"""The call shape the per-sample poisons share until the v2 Poison base takes it over:
``poison(image, label, index) -> (poisoned, label)`` on a PIL image, a CHW tensor (scalar
label and index) or an NCHW batch, as ARPoison. Subclasses implement
``apply(images NCHW, labels int64 [N], indices int64 [N]) -> images``, the base's method."""
from __future__ import annotations

import torch
from torch import nn

from .._images import as_image_tensor, batch_size_of


class SampleCall(nn.Module):
    num_classes: int

    def apply(self, images: torch.Tensor, labels: torch.Tensor,
              indices: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, image, label, index):
        x, rewrap = as_image_tensor(image)
        if x.dtype not in (torch.uint8, torch.float32):
            raise TypeError(f"image: expected uint8 or float32, got {x.dtype}")
        expected = () if x.dim() == 3 else (batch_size_of(x),)
        if expected == (0,):
            raise ValueError(f"image: expected a non-empty batch, got shape {tuple(x.shape)}")
        batch = []
        for name, value in (("label", label), ("index", index)):
            t = torch.as_tensor(value, device=x.device)
            if t.dtype.is_floating_point or t.dtype == torch.bool:
                raise TypeError(f"{name}: expected integers, got dtype {t.dtype}")
            if tuple(t.shape) != expected:
                raise ValueError(f"{name}: expected shape {expected} for images of shape "
                                 f"{tuple(x.shape)}, got {tuple(t.shape)}")
            batch.append(t.reshape(-1).long())
        labels, indices = batch
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise ValueError(f"label: expected class indices in [0, {self.num_classes}), got "
                             f"values in [{int(labels.min())}, {int(labels.max())}]")
        single = x.dim() == 3
        out = self.apply(x.unsqueeze(0) if single else x, labels, indices)
        return rewrap(out[0] if single else out), label
