"""The call shape the per-sample poisons share until the v2 Poison base takes it over:
``poison(image, label, index) -> (poisoned, label)`` on a PIL image, a CHW tensor (scalar
label and index) or an NCHW batch, as ARPoison. Subclasses implement
``apply(images NCHW, labels int64 [N], indices int64 [N]) -> images``, the base's method.
Label ranges of batches are checked by the ops (one pass in C++); a DataLoader calls this
once per sample, so the single-image path stays in plain Python."""
from __future__ import annotations

import torch
from torch import nn

from .._images import as_image_tensor, batch_size_of


def _per_sample(name: str, value, x: torch.Tensor, expected: tuple) -> torch.Tensor:
    """label / index as int64 [N] on x's device, after dtype and shape checks."""
    if isinstance(value, int) and not isinstance(value, bool) and expected == ():
        return torch.tensor([value], device=x.device)
    t = torch.as_tensor(value, device=x.device)
    if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
        raise TypeError(f"{name}: expected integers, got dtype {t.dtype}")
    if tuple(t.shape) != expected:
        raise ValueError(f"{name}: expected shape {expected} for images of shape "
                         f"{tuple(x.shape)}, got {tuple(t.shape)}")
    return t.reshape(-1).long()


class SampleCall(nn.Module):
    num_classes: int
    needs_indices = True  # False: apply ignores indices (they are not even converted)

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
        if isinstance(label, int) and not 0 <= label < self.num_classes:
            raise ValueError(f"label: expected a class index in [0, {self.num_classes}), got {label}")
        labels = _per_sample("label", label, x, expected)
        indices = _per_sample("index", index, x, expected) if self.needs_indices else None
        single = x.dim() == 3
        out = self.apply(x.unsqueeze(0) if single else x, labels, indices)
        return rewrap(out[0] if single else out), label
