"""Batched crop+flip against a per-image reference with the same draws."""
import pytest
import torch
import torch.nn.functional as F

from poisonkit.eval.augment import CIFAR_MEAN, CIFAR_STD, crop_flip, normalize


def test_crop_flip_matches_per_image_reference():
    x = torch.rand(16, 3, 12, 10)
    out = crop_flip(x, padding=3, generator=torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)
    dy = torch.randint(0, 7, (16, 1), generator=g)
    dx = torch.randint(0, 7, (16, 1), generator=g)
    flip = torch.rand(16, 1, generator=g) < 0.5
    for i in range(16):
        ref = F.pad(x[i], (3, 3, 3, 3))[:, dy[i]:dy[i] + 12, dx[i]:dx[i] + 10]
        if flip[i]:
            ref = ref.flip(-1)
        torch.testing.assert_close(out[i], ref, rtol=0, atol=0)


def test_crop_flip_draws_all_offsets_and_flips():
    x = torch.zeros(400, 1, 4, 4)
    x[:, :, 0, 0] = 1  # the marker's position after crop+flip reveals the draw
    out = crop_flip(x, padding=2, generator=torch.Generator().manual_seed(0))
    positions = {tuple(p.tolist()) for p in torch.nonzero(out[:, 0])[:, 1:]}
    assert (0, 3) in positions and (2, 2) in positions and (2, 0) in positions


def test_normalize():
    x = torch.rand(2, 3, 4, 4)
    ref = (x - torch.tensor(CIFAR_MEAN)[:, None, None]) / torch.tensor(CIFAR_STD)[:, None, None]
    torch.testing.assert_close(normalize(x), ref)
    assert normalize(torch.rand(2, 1, 4, 4)).shape == (2, 1, 4, 4)


def test_crop_from_a_smaller_image_zero_pads_like_random_crop():
    """A 30x30 image, RandomCrop(32, padding=4): offsets 0..6 of the 38x38 padded image."""
    from torchvision.transforms import functional as TF
    x = torch.rand(40, 3, 30, 30) + 1  # > 0 everywhere: zeros are padding
    out = crop_flip(x, padding=4, generator=torch.Generator().manual_seed(3), size=(32, 32))
    g = torch.Generator().manual_seed(3)
    dy, dx = torch.randint(0, 7, (40, 1), generator=g), torch.randint(0, 7, (40, 1), generator=g)
    flip = torch.rand(40, 1, generator=g) < 0.5
    for i in range(40):
        ref = TF.crop(TF.pad(x[i], 4), int(dy[i]), int(dx[i]), 32, 32)
        torch.testing.assert_close(out[i], TF.hflip(ref) if flip[i] else ref, rtol=0, atol=0)
        assert (out[i] == 0).all(0).sum() >= 2 * 32 + 2 * 30 - 4  # >= 2 zero rows and columns
    with pytest.raises(ValueError, match="smaller than the crop"):
        crop_flip(torch.rand(1, 3, 20, 20), padding=4, size=(32, 32))


def test_cutmix_pastes_a_box_and_weights_the_labels_by_area():
    import numpy as np
    from poisonkit.eval.augment import cutmix
    x = torch.arange(4, dtype=torch.float32)[:, None, None, None].expand(4, 1, 8, 8).clone()
    y = torch.arange(4)
    mixed, ya, yb, lam = cutmix(x, y, prob=1.0, beta=1.0, rng=np.random.default_rng(0))
    assert torch.equal(ya, y) and 0 < lam < 1 and (yb != y).any()
    for i in range(4):  # image i shows image yb[i] (its value) on (1 - lam) of its pixels
        region = mixed[i, 0] != x[i, 0]
        assert region.sum() == (round((1 - lam) * 64) if yb[i] != y[i] else 0)
        assert (mixed[i, 0][region] == yb[i]).all()
    assert cutmix(x, y, prob=0.0, beta=1.0, rng=np.random.default_rng(0))[3] == 1.0


def test_normalize_with_the_reference_constants():
    from poisonkit.eval.augment import REFERENCE_STD
    x = torch.rand(2, 3, 4, 4)
    ref = (x - torch.tensor(CIFAR_MEAN)[:, None, None]) / torch.tensor(REFERENCE_STD)[:, None, None]
    torch.testing.assert_close(normalize(x, CIFAR_MEAN, REFERENCE_STD), ref)
