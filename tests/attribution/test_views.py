"""The batched SimCLR views: in range, seeded, drawn per image, and exactly the image (or
its mirror, or its gray version) when only that draw is on."""
import torch

from poisonkit.attribution.views import ViewConfig, simclr_views

OFF = dict(min_scale=1.0, ratio=(1.0, 1.0), hflip=0.0, jitter_prob=0.0, grayscale=0.0)


def test_views_are_seeded_in_range_and_drawn_per_image():
    x = torch.rand(16, 3, 32, 32)
    a = simclr_views(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1
    torch.testing.assert_close(a, simclr_views(x, torch.Generator().manual_seed(0)))
    assert not torch.allclose(a, simclr_views(x, torch.Generator().manual_seed(1)))
    views = simclr_views(torch.stack([x[0]] * 8), torch.Generator().manual_seed(2))
    assert len({tuple(v.flatten()[:50].tolist()) for v in views}) == 8


def test_each_augmentation_alone():
    x = torch.rand(3, 3, 16, 16)
    g = lambda: torch.Generator().manual_seed(0)
    torch.testing.assert_close(simclr_views(x, g(), ViewConfig(**OFF)), x, atol=1e-5, rtol=0)
    mirrored = simclr_views(x, g(), ViewConfig(**{**OFF, "hflip": 1.0}))
    torch.testing.assert_close(mirrored, x.flip(-1), atol=1e-5, rtol=0)
    gray = simclr_views(x, g(), ViewConfig(**{**OFF, "grayscale": 1.0}))
    luma = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    torch.testing.assert_close(gray, luma.expand_as(x), atol=1e-5, rtol=0)
    jitter = simclr_views(x, g(), ViewConfig(**{**OFF, "jitter_prob": 1.0}))
    assert not torch.allclose(jitter, x)
    no_hue = simclr_views(x, g(), ViewConfig(**{**OFF, "jitter_prob": 1.0, "brightness": 0.0,
                                                "contrast": 0.0, "saturation": 0.0, "hue": 0.0}))
    torch.testing.assert_close(no_hue, x, atol=1e-5, rtol=0)  # the YIQ rotation by 0 is the identity
