"""Dataset labels checked before any work: integers, in [0, K), K given or taken from the
data (then every class in [0, K) must have a training sample: a stray label of 10^12
would otherwise mean 10^12 classes), test classes among the training classes. Costs a
sort of the labels, never memory proportional to a label's value."""
from __future__ import annotations

import numpy as np
import torch


def _as_numpy(labels, name: str) -> np.ndarray:
    array = labels.numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name}: expected integer class labels, got dtype {array.dtype}")
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-d array of labels, got shape {array.shape}")
    return array


def check_labels(train, test=None, num_classes: int | None = None) -> int:
    """Validates training (and test) labels; returns the class count K."""
    y = _as_numpy(train, "y_train")
    if len(y) == 0:
        raise ValueError("y_train: expected at least one training label")
    present = np.unique(y)
    if present[0] < 0:
        raise ValueError(f"y_train: class indices must be >= 0, got {int(present[0])}")
    if num_classes is not None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes: expected a positive int, got {num_classes!r}")
        if present[-1] >= num_classes:
            raise ValueError(f"y_train: class indices must be in [0, {num_classes}) (num_classes), "
                             f"got {int(present[-1])}")
    else:
        if int(present[-1]) + 1 != len(present):
            raise ValueError(f"y_train: labels run up to {int(present[-1])} but only "
                             f"{len(present)} distinct classes have training images; labels "
                             "must be 0..K-1 (pass num_classes / --num-classes when some "
                             "class has no training image)")
        num_classes = len(present)
    if test is not None:
        t = np.unique(_as_numpy(test, "y_test"))
        if len(t) and (t[0] < 0 or t[-1] >= num_classes):
            raise ValueError(f"y_test: class indices must be in [0, {num_classes}), got values in "
                             f"[{int(t[0])}, {int(t[-1])}]")
        unseen = np.setdiff1d(t, present)
        if len(unseen):
            raise ValueError(f"y_test: classes {unseen[:10].tolist()} have no training image; "
                             "test classes must be training classes")
    return num_classes
