"""Embeddings are unit-norm, batched consistently, and the disk cache is keyed by the data
and the backbone: a change to either is never served a stale embedding."""
import torch
from torch import nn

from poisonkit.attribution.backbones import Backbone, pixel_backbone
from poisonkit.attribution.embed import cached_embed, embed


class Counting(Backbone):
    """A small conv backbone that counts the images it embeds."""

    def __init__(self, seed=0):
        torch.manual_seed(seed)
        super().__init__(nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(2)), "counting", (3, 8, 8))
        self.seen = 0

    def forward(self, x):
        self.seen += len(x)
        return super().forward(x)


def images(n=20, seed=0):
    return torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_embeddings_are_unit_norm_and_independent_of_the_batch_size():
    x = images()
    bb = Counting()
    a, b = embed(bb, x, batch_size=3), embed(bb, x, batch_size=64)
    torch.testing.assert_close(a.norm(dim=1), torch.ones(len(x)))
    torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(embed(bb, x.float() / 255), a)  # float [0, 1] input alike


def test_cache_is_reused_and_invalidated_by_data_or_backbone_change(tmp_path):
    x, bb = images(), Counting()
    first = cached_embed(bb, x, tmp_path)
    assert bb.seen == len(x) and len(list(tmp_path.glob("*.pt"))) == 1
    again = cached_embed(bb, x, tmp_path)
    assert bb.seen == len(x)                      # served from the cache
    torch.testing.assert_close(again, first)
    changed = x.clone()
    changed[7, 1, 3, 4] ^= 1                      # one bit of one pixel
    out = cached_embed(bb, changed, tmp_path)
    assert bb.seen == 2 * len(x)                  # recomputed
    torch.testing.assert_close(out, embed(bb, changed))
    with torch.no_grad():
        bb.net[0].weight[0, 0, 0, 0] += 1e-3      # the backbone changes
    out = cached_embed(bb, x, tmp_path)
    assert bb.seen == 4 * len(x)                  # (embed() above counted once more)
    torch.testing.assert_close(out, embed(bb, x))
    assert not torch.allclose(out, first)
    assert not list(tmp_path.glob(".*.tmp"))      # atomic writes leave no temporary files


def test_a_damaged_cache_file_is_recomputed(tmp_path):
    x, bb = images(), Counting()
    first = cached_embed(bb, x, tmp_path)
    (path,) = tmp_path.glob("*.pt")
    path.write_bytes(b"not a torch file")
    torch.testing.assert_close(cached_embed(bb, x, tmp_path), first)
    assert bb.seen == 2 * len(x)


def test_pixel_backbone_is_cosine_of_standardised_pixels():
    x = images(5)
    f = embed(pixel_backbone((3, 8, 8)), x)
    mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
    std = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)
    ref = ((x.float() / 255 - mean) / std).flatten(1)
    torch.testing.assert_close(f, ref / ref.norm(dim=1, keepdim=True))
