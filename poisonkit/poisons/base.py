"""The one protocol every poison follows: a torchvision v2 Transform over batches.

A subclass implements ``apply(images, labels, indices) -> images``: images uint8 [0, 255]
or float32 [0, 1], NCHW, already validated; labels and indices int64 [N] on the images'
device (indices may be None for a poison with ``needs_indices = False``); apply must not
modify labels or indices in place (a sample's labels tensor is cached).
It returns the poisoned batch, same shape and dtype. Everything else lives here, once:

- calling conventions: a v2 sample (``poison((image, label))``, ``poison(image, label,
  index)``, ``poison({"image": ..., "label": ..., "index": ...})``; labels and indices are
  found by ``labels_getter`` / ``indices_getter``, as v2.CutMix finds labels) or an explicit
  batch ``poison(images, labels, indices)``. Output keeps the input's structure; only the
  image changes (Masks, BoundingBoxes, KeyPoints and labels pass through untouched).
  ``poison.poison_batch(images, labels, indices)`` returns the poisoned tensor alone.
- validation: image dtype/shape (CHW or NCHW, not HWC, not empty), integer labels of the
  right shape in [0, num_classes), integer indices.
- partial poisoning (``ratio``): sample ``i`` is poisoned iff ``poisoned_mask(i)``, a pure
  function of (key, i), so the subset is the same whatever the batch or worker.
- the secret ``key``: 128 random bits from the OS by default (never 0).
"""
from __future__ import annotations

import hashlib
import math
from typing import Any, Callable

import torch
from torch.utils._pytree import tree_flatten, tree_unflatten

from .._images import ImageTransform, check_layout
from ..keys import check_key, new_key

_MASK32 = 0xFFFFFFFF


def check_ratio(ratio) -> float:
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0.0 <= ratio <= 1.0:
        raise ValueError(f"ratio: expected a number in [0, 1], got {ratio!r}")
    return float(ratio)


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """(x * c) mod 2^32 for x in [0, 2^32) held in int64, without int64 overflow."""
    lo, hi = c & 0xFFFF, c >> 16
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & _MASK32


def _hash32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer mixer (Wellons' lowbias32) on int64 tensors holding 32-bit values."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def _find_default(sample: Any, position: int, names: tuple[str, ...]) -> Any:
    """The entry at `position` of a tuple/list sample, or the first key of a dict sample
    (case-insensitive) among names; None when absent."""
    if isinstance(sample, (tuple, list)):
        if len(sample) > position:
            return sample[position]
        if sample and isinstance(sample[-1], dict):
            return _find_default(sample[-1], position, names)
        return None
    if isinstance(sample, dict):
        lowered = {str(k).lower(): k for k in sample}
        for name in names:
            if name in lowered:
                return sample[lowered[name]]
    return None


def _getter(spec, position: int, names: tuple[str, ...]) -> Callable[[Any], Any]:
    if spec == "default":
        return lambda sample: _find_default(sample, position, names)
    if spec is None:
        return lambda sample: None
    if callable(spec):
        return spec
    raise ValueError(f"getter: expected 'default', a callable or None, got {spec!r}")


class Poison(ImageTransform):
    """Base of every poison (see the module doc). Subclasses implement ``apply``. Only
    images are poisoned; Mask, BoundingBoxes, KeyPoints and labels pass through."""

    needs_indices = False  # True when the perturbation depends on the sample index

    def __init__(self, num_classes: int, *, ratio: float = 1.0, key: int | None = None,
                 labels_getter="default", indices_getter="default"):
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes: expected a positive int, got {num_classes!r}")
        self.num_classes = num_classes
        self.ratio = check_ratio(ratio)
        self.key = new_key() if key is None else check_key(key)
        _getter(labels_getter, 1, ()), _getter(indices_getter, 2, ())  # validate now
        self.labels_getter, self.indices_getter = labels_getter, indices_getter
        digest = hashlib.blake2b(self.key.to_bytes(16, "little"), digest_size=8,
                                 person=b"poisonkit/ratio").digest()
        self._mask_words = (int.from_bytes(digest[:4], "little"), int.from_bytes(digest[4:], "little"))
        self._label_rows: dict = {}  # (class, device) -> int64 [1]: one sample's labels tensor

    def apply(self, images: torch.Tensor, labels: torch.Tensor,
              indices: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    # ---- partial poisoning ----

    def poisoned_mask(self, indices) -> torch.Tensor:
        """bool tensor shaped like indices: which samples this poison changes. A pure
        function of (key, index): P(poisoned) = ratio, the same subset in every batch."""
        indices = torch.as_tensor(indices)
        _check_integer("indices", indices)
        if self.ratio == 1.0:
            return torch.ones_like(indices, dtype=torch.bool)
        i = indices.long()
        k0, k1 = self._mask_words
        h = _hash32((i & _MASK32) ^ k0)
        h = _hash32(h ^ ((i >> 32) & _MASK32) ^ k1)
        return h < math.floor(self.ratio * 2.0 ** 32)

    # ---- the batch protocol ----

    def poison_batch(self, images: torch.Tensor, labels, indices=None) -> torch.Tensor:
        """Poisons a CHW image (scalar label/index) or an NCHW batch (labels/indices [N]);
        returns the poisoned tensor, same shape and dtype."""
        check_image_tensor(images)
        single = images.dim() == 3
        batch = images.unsqueeze(0) if single else images
        labels = self._labels(labels, batch, single)
        uses_indices = self.needs_indices or self.ratio < 1.0
        if indices is None:
            if uses_indices:
                why = "this poison depends on the sample index" if self.needs_indices else \
                    f"ratio={self.ratio} selects samples by index"
                raise ValueError(f"indices: expected the samples' dataset indices ({why}), got none")
        elif type(indices) is int and single and not uses_indices:
            _check_int64("indices", indices)  # one sample's unused index: checked, not converted
            indices = None
        else:
            indices = _as_index_tensor("indices", indices, batch, single)
        out = self.apply(batch, labels, indices)
        if self.ratio < 1.0:
            out = torch.where(self.poisoned_mask(indices).view(-1, 1, 1, 1), out, batch)
        return out[0] if single else out

    def _labels(self, labels, batch: torch.Tensor, single: bool) -> torch.Tensor:
        one = type(labels) is int and single  # one sample's label: no reduction, a cached tensor
        if one:
            lo = hi = labels
        else:
            labels = _as_index_tensor("labels", labels, batch, single)
            if torch.compiler.is_compiling() or not labels.numel():
                return labels
            lo, hi = map(int, torch.aminmax(labels))  # one pass, plain ints to compare
        if lo < 0 or hi >= self.num_classes:
            raise ValueError(f"labels: expected class indices in [0, {self.num_classes}), "
                             f"got values in [{lo}, {hi}]")
        if not one:
            return labels
        key = (lo, batch.device)
        if key not in self._label_rows:
            self._label_rows[key] = _as_index_tensor("labels", lo, batch, single)
        return self._label_rows[key]

    # ---- v2 Transform plumbing ----

    def forward(self, *inputs: Any) -> Any:
        if self._plain_batch(inputs):  # poison(images, labels[, indices]): no tree to walk
            return (self.poison_batch(inputs[0], inputs[1], inputs[2] if len(inputs) == 3 else None),
                    *inputs[1:])
        sample = inputs if len(inputs) > 1 else inputs[0]
        labels = _getter(self.labels_getter, 1, ("labels", "label", "target", "targets"))(sample)
        indices = _getter(self.indices_getter, 2, ("indices", "index", "idx"))(sample)
        if labels is None:
            raise ValueError("labels: not found in the sample (expected (image, label[, index]), a "
                             "dict with a 'label' key, or a labels_getter)")
        flat, spec = tree_flatten(sample)
        self.check_inputs(flat)
        needs = [n and x is not labels and x is not indices
                 for x, n in zip(flat, self._needs_transform_list(flat))]
        if not any(needs):
            raise TypeError("image: expected a PIL image, a tv_tensors.Image or a CHW/NCHW tensor "
                            f"in the sample, got {[type(x).__name__ for x in flat]}")
        if sum(needs) > 1:
            raise ValueError(f"image: expected exactly one image in the sample, found {sum(needs)}")
        params = {"labels": labels, "indices": indices}
        return tree_unflatten([self.transform(x, params) if n else x for x, n in zip(flat, needs)],
                              spec)

    def _plain_batch(self, inputs: tuple) -> bool:
        """(tensor, label[, index]) as plain tensors or ints, with the default getters: the
        general path below would find the same image, labels and indices, at a cost
        comparable to a 32x32 batch's op."""
        return (2 <= len(inputs) <= 3 and type(inputs[0]) is torch.Tensor
                and self.labels_getter == "default" and self.indices_getter == "default"
                and all(type(t) in (torch.Tensor, int) for t in inputs[1:]))

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        from ..transforms.functional import poison
        return poison(inpt, self, params["labels"], params["indices"])

    def extra_repr(self) -> str:
        # Never the key: a repr ends up in logs.
        return f"num_classes={self.num_classes}, ratio={self.ratio}"


def check_image_tensor(x: torch.Tensor) -> None:
    """uint8/float32, CHW or NCHW with a plausible channel dim, not empty."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"image: expected a tensor, got {type(x).__name__}")
    if x.dtype not in (torch.uint8, torch.float32):
        raise TypeError(f"image: expected uint8 or float32, got {x.dtype}")
    check_layout(x)
    if x.dim() == 4 and x.shape[0] == 0:
        raise ValueError(f"image: expected a non-empty batch, got shape {tuple(x.shape)}")
    if x.shape[-1] == 0 or x.shape[-2] == 0 or x.shape[-3] == 0:
        raise ValueError(f"image: expected non-empty images, got shape {tuple(x.shape)}")


def check_every_class(labels: torch.Tensor, num_classes: int, why: str) -> None:
    """labels (int64 [N]) in [0, num_classes) with at least one image of every class, for
    the poisons computed from a whole training set (OPS search, EM/TAP crafting)."""
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels: expected values in [0, {num_classes}), got "
                         f"[{int(labels.min())}, {int(labels.max())}]")
    empty = torch.nonzero(torch.bincount(labels, minlength=num_classes) == 0).flatten().tolist()
    if empty:
        raise ValueError(f"labels: classes {empty} have no images; {why}")


def _check_integer(name: str, t: torch.Tensor) -> None:
    if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
        raise TypeError(f"{name}: expected integers, got dtype {t.dtype}")


def _check_int64(name: str, value: int) -> None:
    if not -2 ** 63 <= value < 2 ** 63:
        raise ValueError(f"{name}: expected an int64 value, got {value}")


def _as_index_tensor(name: str, value, batch: torch.Tensor, single: bool) -> torch.Tensor:
    """labels / indices as int64 [N] on the batch's device, shape-checked against it."""
    if type(value) is int and single:  # one sample's label or index (a DataLoader's call)
        _check_int64(name, value)
        return torch.full((1,), value, dtype=torch.int64, device=batch.device)
    if (type(value) is torch.Tensor and value.dtype == torch.int64 and not single
            and value.shape == batch.shape[:1] and value.device == batch.device):
        return value  # a batch's int64 [N] already where the images are
    if isinstance(value, (bool, float)):
        raise TypeError(f"{name}: expected integers, got {type(value).__name__}")
    t = torch.as_tensor(value, device=batch.device)
    _check_integer(name, t)
    expected = () if single else (batch.shape[0],)
    if tuple(t.shape) != expected and not (single and tuple(t.shape) == (1,)):
        raise ValueError(f"{name}: expected shape {expected} for images of shape "
                         f"{tuple(batch.shape[1:]) if single else tuple(batch.shape)}, "
                         f"got {tuple(t.shape)}")
    return (t if t.dim() == 1 else t.reshape(-1)).long()
