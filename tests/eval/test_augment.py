"""Batched crop+flip against a per-image reference with the same draws."""
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
