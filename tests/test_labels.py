"""poisonkit._labels and the dataset loaders that use it: a stray label of 1000 used to
make a 1001-class model (eval) or 1001 coefficient sets (export); float labels were
truncated (issue 14, finding 5)."""
import numpy as np
import pytest
import torch

from poisonkit._labels import check_labels
from poisonkit.data import load_dataset


def test_class_count_from_the_data_or_given():
    assert check_labels(torch.arange(20) % 4, torch.arange(3)) == 4
    assert check_labels(np.array([0, 2, 2], np.int32), None, num_classes=5) == 5
    with pytest.raises(ValueError, match="only 5 distinct"):
        check_labels(np.array([0, 1, 2, 3, 1000]))
    with pytest.raises(TypeError, match="integer class labels"):
        check_labels(np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match="integer class labels"):
        check_labels(np.array([True, False]))
    with pytest.raises(ValueError, match=r"classes \[3\] have no training image"):
        check_labels(np.array([0, 1, 2]), np.array([3]), num_classes=4)
    with pytest.raises(ValueError, match="at least one"):
        check_labels(np.array([], np.int64))


@pytest.mark.parametrize("y_train, match", [
    (np.where(np.arange(20) == 3, 1000, np.arange(20) % 4), "only 5 distinct"),
    ((np.arange(20) % 4).astype(np.float64), "integer class labels"),
])
def test_eval_data_with_bad_labels_is_refused(tmp_path, y_train, match):
    x = np.zeros((20, 8, 8, 3), np.uint8)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y_train, x_test=x[:4], y_test=np.arange(4))
    with pytest.raises(ValueError, match=match):
        load_dataset(tmp_path / "d.npz")
