"""LSPPoison: the call shapes (sample, batch, PIL), equality with the op, parameter errors."""
import math

import numpy as np
import PIL.Image
import pytest
import torch

from poisonkit import ops
from poisonkit.poisons.lsp import LSPPoison


def test_sample_and_batch_agree(gen):
    poison = LSPPoison(10, key=3)
    x = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8, generator=gen)
    labels, indices = torch.arange(8), torch.arange(8) + 40
    batch, same, _ = poison(x, labels, indices)
    assert same is labels
    centres, mixing = ops.lsp_classes(3, 10, 48)
    assert torch.equal(batch, ops.lsp_poison(x, centres, mixing, labels, indices, 3))
    one, label, _ = poison(x[2], 2, 42)
    assert label == 2 and torch.equal(one, batch[2])
    pil, _, _ = poison(PIL.Image.fromarray(x[2].permute(1, 2, 0).numpy()), 2, 42)
    assert torch.equal(torch.from_numpy(np.array(pil)).permute(2, 0, 1), batch[2])
    delta = poison.perturbation(labels, indices, 3, 32, 32)
    assert torch.allclose(delta.flatten(1).norm(dim=1), torch.full((8,), math.sqrt(3072) * 6 / 255))


def test_apply_is_the_base_protocol(gen):
    poison = LSPPoison(4, key=9, patch=4)
    x = torch.rand(3, 3, 16, 16, generator=gen)
    out = poison.apply(x, torch.tensor([0, 3, 1]), torch.tensor([0, 1, 2]))
    assert out.shape == x.shape and out.dtype == torch.float32
    assert (out - x).abs().max() > 0


@pytest.mark.parametrize("kwargs,match", [
    (dict(eps=float("nan")), "eps"), (dict(eps=0), "eps"), (dict(eps=-0.1), "eps"),
    (dict(patch=0), "patch"), (dict(class_sep=float("inf")), "class_sep"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LSPPoison(10, **kwargs)


def test_bad_calls():
    poison = LSPPoison(10, patch=8)
    x = torch.zeros(2, 3, 36, 36, dtype=torch.uint8)
    with pytest.raises(ValueError, match="patch: expected a divisor of the image size 36x36"):
        poison(x, torch.tensor([0, 1]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"labels: expected class indices in \[0, 10\)"):
        poison(x[:, :, :32, :32], torch.tensor([0, 10]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"in \[0, 10\), got values in \[-1, -1\]"):
        poison(x[0, :, :32, :32], -1, 0)
    with pytest.raises(TypeError, match="indices: expected integers"):
        poison(x[:, :, :32, :32], torch.tensor([0, 1]), torch.tensor([0.0, 1.0]))
    assert "key" not in repr(LSPPoison(10, key=12345))


def test_partial_poisoning_leaves_the_unselected_samples(gen):
    poison = LSPPoison(10, key=5, ratio=0.5)
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=gen)
    y, i = torch.arange(64) % 10, torch.arange(64)
    out = poison.poison_batch(x, y, i)
    chosen = poison.poisoned_mask(i)
    assert 0 < int(chosen.sum()) < 64
    assert torch.equal(out[~chosen], x[~chosen])
    assert torch.equal(out[chosen], LSPPoison(10, key=5).poison_batch(x, y, i)[chosen])


def test_dataloader_workers_give_the_batch_result(gen):
    from poisonkit.data import PoisonedDataset
    x = torch.randint(0, 256, (24, 3, 32, 32), dtype=torch.uint8, generator=gen)
    y = torch.arange(24) % 10
    poison = LSPPoison(10, key=77)
    base = torch.utils.data.TensorDataset(x, y)
    loader = torch.utils.data.DataLoader(PoisonedDataset(base, poison), batch_size=5,
                                         shuffle=True, num_workers=2,
                                         generator=torch.Generator().manual_seed(0))
    seen = torch.zeros(24, dtype=torch.bool)
    expected = poison.poison_batch(x, y, torch.arange(24))
    for images, labels in loader:
        for image, label in zip(images, labels):
            match = (expected == image).flatten(1).all(1) & (y == label)
            assert match.any()
            seen |= match
    assert seen.all()
