"""The Poison protocol (poisons/base.py): calling conventions, validation, keys, and
partial poisoning, on a minimal subclass and on the two real poisons."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision import tv_tensors

from poisonkit import keys, ops
from poisonkit.keys import KEY_BITS
from poisonkit.poisons.base import Poison
from poisonkit.transforms import ARPoison, ClasswiseBlur


class AddLabel(Poison):
    """Adds (label + index % 3) to every uint8 pixel: the output shows which sample and
    label the base handed to apply."""

    needs_indices = True

    def apply(self, images, labels, indices):
        return images + (labels + indices % 3).to(images.dtype).view(-1, 1, 1, 1)


@pytest.fixture
def batch(gen):
    x = torch.randint(0, 200, (6, 3, 8, 8), dtype=torch.uint8, generator=gen)
    return x, torch.tensor([0, 1, 2, 3, 4, 0]), torch.arange(10, 16)


def expected_add(x, y, i):
    return x + (y + i % 3).to(torch.uint8).view(-1, 1, 1, 1)


def test_every_calling_convention_gives_the_batch_result(batch):
    x, y, i = batch
    poison = AddLabel(5, key=1)
    want = expected_add(x, y, i)
    assert torch.equal(poison.poison_batch(x, y, i), want)
    out, y_out, i_out = poison(x, y, i)
    assert torch.equal(out, want) and y_out is y and i_out is i
    for n in range(len(x)):
        assert torch.equal(poison(x[n], int(y[n]), int(i[n]))[0], want[n])
        assert torch.equal(poison((x[n], y[n], i[n]))[0], want[n])
        sample = {"image": tv_tensors.Image(x[n]), "label": int(y[n]), "index": int(i[n])}
        got = poison(sample)
        assert isinstance(got["image"], tv_tensors.Image) and torch.equal(got["image"], want[n])
        assert got["label"] == y[n] and got["index"] == i[n]


class ClassOnly(AddLabel):
    """AddLabel without the index: records what apply received."""

    needs_indices = False

    def apply(self, images, labels, indices):
        self.seen = indices
        return images + labels.to(images.dtype).view(-1, 1, 1, 1)


def test_one_sample_with_int_label_and_index(batch):
    x, y, i = batch
    poison = ClassOnly(5, key=1)
    assert torch.equal(poison(x[1], 3, 7)[0], x[1] + 3)
    assert poison.seen is None  # an unused int index is checked, not turned into a tensor
    first = poison(x[1], 3, 7)[0]
    assert torch.equal(poison(x[2], 3)[0], x[2] + 3) and torch.equal(first, x[1] + 3)
    for label in (-1, 5, 2 ** 70):
        with pytest.raises(ValueError, match=r"labels: expected class indices in \[0, 5\)"):
            poison(x[0], label, 0)
    with pytest.raises(ValueError, match="indices: expected an int64 value"):
        poison(x[0], 1, 2 ** 70)
    with pytest.raises(ValueError, match="indices: expected an int64 value"):
        AddLabel(5, key=1)(x[0], 1, -2 ** 64)
    with pytest.raises(TypeError, match="indices"):
        poison(x[0], 1, 1.5)
    with pytest.raises(ValueError, match="labels: expected shape"):
        poison(x, 1, 0)  # an int label for a batch


def test_getters_find_labels_and_indices_anywhere(batch):
    x, y, i = batch
    poison = AddLabel(5, key=1, labels_getter=lambda s: s["meta"]["cls"],
                      indices_getter=lambda s: s["meta"]["n"])
    sample = {"img": x[2], "meta": {"cls": int(y[2]), "n": int(i[2])}}
    assert torch.equal(poison(sample)["img"], expected_add(x, y, i)[2])
    with pytest.raises(ValueError, match="getter"):
        AddLabel(5, labels_getter="labels")


def test_validation_names_the_argument(batch):
    x, y, i = batch
    poison = AddLabel(5, key=1)
    with pytest.raises(ValueError, match=r"labels: expected class indices in \[0, 5\)"):
        poison(x, torch.tensor([0, 1, 2, 3, 5, 0]), i)
    with pytest.raises(ValueError, match="labels"):
        poison(x, torch.tensor([0, -1, 2, 3, 4, 0]), i)
    with pytest.raises(TypeError, match="labels"):
        poison(x, y.float(), i)
    with pytest.raises(ValueError, match="labels: expected shape"):
        poison(x, y[:3], i)
    with pytest.raises(TypeError, match="indices"):
        poison(x, y, i.double())
    with pytest.raises(ValueError, match="indices: expected the samples' dataset indices"):
        poison(x, y)
    with pytest.raises(ValueError, match="labels: not found"):
        poison({"image": x[0]})
    with pytest.raises(ValueError, match="non-empty batch"):
        poison(x[:0], y[:0], i[:0])
    with pytest.raises(TypeError, match="uint8 or float32"):
        poison(x.double(), y, i)
    with pytest.raises(ValueError, match="channels-last"):
        poison(x[0].permute(1, 2, 0), 1, 0)
    with pytest.raises(TypeError, match="numpy"):
        poison(np.zeros((8, 8, 3), np.uint8), 1, 0)
    with pytest.raises(ValueError, match="num_classes"):
        AddLabel(0)


def test_default_key_is_fresh_128_bit_and_never_logged():
    keys = {AddLabel(3).key for _ in range(8)}
    assert len(keys) == 8 and all(0 < k < 2**KEY_BITS for k in keys)
    assert max(keys).bit_length() > 64  # 8 draws below 2^64 would have probability 2^-512
    poison = AddLabel(3)
    assert str(poison.key) not in repr(poison)
    for bad, err in [(-1, ValueError), (2**KEY_BITS, ValueError), (1.0, TypeError), (True, TypeError)]:
        with pytest.raises(err, match="key"):
            AddLabel(3, key=bad)


def test_a_128_bit_key_reaches_the_kernels_through_keys_philox_key(gen):
    x = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8, generator=gen)
    y, i = torch.tensor([1, 2]), torch.tensor([3, 4])
    for key in (1234, (5 << 64) | 3):
        poison = ARPoison(10, key=key)
        assert poison.philox_key == keys.philox_key(key)
        assert torch.equal(poison.poison_batch(x, y, i),
                           ops.ar_poison(x, poison.coeffs, y, i, keys.philox_key(key)))


def test_poisoned_mask_is_a_function_of_key_and_index():
    poison = AddLabel(3, key=99, ratio=0.3)
    indices = torch.arange(20000)
    mask = poison.poisoned_mask(indices)
    assert mask.dtype == torch.bool and mask.shape == indices.shape
    # P = 0.3: 3 standard deviations of a binomial over 20000 draws is about 0.0097
    assert abs(mask.double().mean().item() - 0.3) < 0.0097
    shuffled = torch.randperm(20000)
    assert torch.equal(poison.poisoned_mask(shuffled), mask[shuffled])
    assert torch.equal(AddLabel(3, key=99, ratio=0.3).poisoned_mask(indices), mask)
    assert not torch.equal(AddLabel(3, key=98, ratio=0.3).poisoned_mask(indices), mask)
    # a larger ratio poisons a superset (same hash, higher threshold)
    assert (AddLabel(3, key=99, ratio=0.6).poisoned_mask(indices) | ~mask).all()
    large = torch.tensor([2**40 + 7, 2**62, 7])
    assert poison.poisoned_mask(large)[2] == mask[7]
    assert AddLabel(3, ratio=0.0).poisoned_mask(indices).sum() == 0
    assert AddLabel(3, ratio=1.0).poisoned_mask(indices).all()


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), True, "0.5"])
def test_ratio_is_validated(bad):
    with pytest.raises(ValueError, match="ratio"):
        AddLabel(3, ratio=bad)


def test_partial_poisoning_leaves_unselected_samples_bit_identical(gen):
    x = torch.randint(0, 256, (64, 3, 16, 16), dtype=torch.uint8, generator=gen)
    y, i = torch.arange(64) % 10, torch.arange(1000, 1064)
    for full, partial in [(ClasswiseBlur(seed=0), ClasswiseBlur(seed=0, ratio=0.5, key=7)),
                          (ARPoison(10, key=7), ARPoison(10, key=7, ratio=0.5))]:
        partial.load_state_dict(full.state_dict())
        out = partial.poison_batch(x, y, i)
        mask = partial.poisoned_mask(i)
        assert 10 < int(mask.sum()) < 54
        assert torch.equal(out[~mask], x[~mask])
        assert torch.equal(out[mask], full.poison_batch(x, y, i)[mask])
        # the same sample gives the same result alone
        n = int(torch.nonzero(mask)[0])
        assert torch.equal(partial(x[n], int(y[n]), int(i[n]))[0], out[n])
    with pytest.raises(ValueError, match="ratio=0.5 selects samples by index"):
        ClasswiseBlur(ratio=0.5)(x, y)
