"""OnePixelShortcut: search over batches equals the one-pass search, the reference's
position map, call shapes, errors."""
import pytest
import torch

from poisonkit import ops
from poisonkit.poisons.one_pixel import OnePixelShortcut, colour_bits


def test_search_and_apply(gen):
    x = torch.randint(0, 256, (60, 3, 8, 8), dtype=torch.uint8, generator=gen)
    y = torch.arange(60) % 3
    x[y == 0, :, 5, 2] = 255  # class 0: pixel (5, 2) always white
    poison = OnePixelShortcut.search(x, y, batch_size=7)
    assert (poison.rows[0], poison.cols[0]) == (5, 2)
    assert torch.equal(poison.colours[0], torch.ones(3))
    sums, squares, counts = ops.one_pixel_moments(x, y, 3)
    _, choice = ops.one_pixel_search(sums, squares, counts, 255.0)
    position = choice >> 3
    assert torch.equal(poison.rows, position // 8) and torch.equal(poison.cols, position % 8)
    assert torch.equal(poison.colours, colour_bits(choice & 7, 3))
    out = poison.poison_batch(x, y, torch.arange(60))
    pixel = out[torch.arange(60), :, poison.rows[y], poison.cols[y]]
    assert torch.equal(pixel, (poison.colours[y] * 255).byte())
    assert ((out != x).any(1).flatten(1).sum(1) <= 1).all()
    one = poison.poison_batch(x[4], 1, 4)
    assert torch.equal(one, out[4])


def test_colour_bits_follow_the_reference():
    # pixel_value // 2 // 2, pixel_value // 2 % 2, pixel_value % 2
    assert colour_bits(torch.arange(8), 3).tolist() == [
        [v // 2 // 2, v // 2 % 2, v % 2] for v in range(8)]


def test_errors(gen):
    x = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8, generator=gen)
    with pytest.raises(ValueError, match=r"labels: classes \[1\] have no images"):
        OnePixelShortcut.search(x, torch.tensor([0, 0, 2, 2, 0, 2]))
    with pytest.raises(ValueError, match="labels: expected 6 labels"):
        OnePixelShortcut.search(x, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="colours"):
        OnePixelShortcut(torch.tensor([0]), torch.tensor([0]), torch.tensor([[2.0, 0, 0]]))
    poison = OnePixelShortcut(torch.tensor([9]), torch.tensor([0]), torch.ones(1, 3))
    with pytest.raises(ValueError, match="outside a 8x8 image"):
        poison(x, torch.zeros(6, dtype=torch.long), torch.arange(6))


def test_partial_poisoning_changes_only_the_selected_samples():
    x = torch.full((40, 3, 8, 8), 128, dtype=torch.uint8)
    y, i = torch.arange(40) % 2, torch.arange(40)
    poison = OnePixelShortcut(torch.tensor([1, 2]), torch.tensor([3, 4]), torch.eye(3)[:2],
                              ratio=0.25, key=7)
    out = poison.poison_batch(x, y, i)
    chosen = poison.poisoned_mask(i)
    assert 0 < int(chosen.sum()) < 40
    assert torch.equal(out[~chosen], x[~chosen])
    assert ((out[chosen] != x[chosen]).any(1).flatten(1).sum(1) == 1).all()
