"""OPS ops: the search against the reference's brute-force pixel_search loop (per class, per
position, per corner colour, mean/std of |colour - pixel| with numpy; pairs taken by earlier
classes scored 0; the last entry of np.argsort; the bench's peer, poisonkit.bench.lsp_ops),
on random and real images; moments additive over batches; apply sets exactly one pixel; bad
input."""
import numpy as np
import pytest
import torch

from poisonkit import ops
from poisonkit.bench.lsp_ops import reference_pixel_search
from tests.conftest import requires_cuda


def search(x, labels, num_classes):
    sums, squares, counts = ops.one_pixel_moments(x, labels, num_classes)
    unit = 255.0 if x.dtype == torch.uint8 else 1.0
    return ops.one_pixel_search(sums, squares, counts, unit)


def as_pairs(choice, channels=3):
    return [[int(c) >> channels, int(c) & ((1 << channels) - 1)] for c in choice]


@pytest.mark.parametrize("size,per_class", [(6, 5), (8, 12)])
def test_search_equals_reference_loop(gen, size, per_class):
    labels = torch.arange(4).repeat_interleave(per_class)
    x = torch.randint(0, 256, (len(labels), 3, size, size), dtype=torch.uint8, generator=gen)
    x[labels == 1, :, 2, 3] = torch.tensor([250, 3, 252], dtype=torch.uint8)  # a near-constant pixel
    x[labels == 2] = x[labels == 1]  # the same best pair: class 2 must take another
    expected, last_scores = reference_pixel_search(x.permute(0, 2, 3, 1).numpy(),
                                                   labels.numpy(), 4)
    scores, choice = search(x, labels, 4)
    assert as_pairs(choice) == expected
    assert expected[1] != expected[2]
    last = scores[3].numpy().copy()
    for point, value in expected[:3]:
        last[point, value] = 0
    assert np.allclose(last, last_scores, rtol=1e-9)
    # float32 images in [0, 1] give the same choice
    assert torch.equal(search(x.float() / 255, labels, 4)[1], choice)


def test_search_equals_reference_loop_on_real_images(cifar):
    keep = torch.cat([torch.nonzero(cifar["y_train"] == k)[:25, 0] for k in range(10)])
    x, y = cifar["x_train"][keep], cifar["y_train"][keep]
    expected, _ = reference_pixel_search(x.permute(0, 2, 3, 1).numpy(), y.numpy(), 10)
    assert as_pairs(search(x, y, 10)[1]) == expected


def test_moments_add_over_batches(gen):
    x = torch.randint(0, 256, (30, 3, 8, 8), dtype=torch.uint8, generator=gen)
    y = torch.randint(0, 3, (30,), generator=gen)
    whole = ops.one_pixel_moments(x, y, 3)
    parts = [ops.one_pixel_moments(x[a:b], y[a:b], 3) for a, b in ((0, 11), (11, 30))]
    for w, p, q in zip(whole, *parts):
        assert torch.equal(w, p + q)
    ref = torch.stack([x[y == k].double().sum(0) for k in range(3)])
    assert torch.equal(whole[0], ref) and torch.equal(whole[2], torch.bincount(y, minlength=3))


# 8x8 and 32x32 images are copied in chunks by the op itself, 160x160 (75 KB) by ATen's copy.
@pytest.mark.parametrize("size", [8, 32, 160])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_apply_sets_exactly_one_pixel(gen, size, layout):
    x = torch.randint(1, 255, (12, 3, size, size), dtype=torch.uint8, generator=gen)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.arange(12) % 3
    x0 = x.clone()
    positions = torch.tensor([0, size + 1, size * size - 1])
    colours = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    out = ops.one_pixel_apply(x, y, positions, colours)
    changed = (out != x).any(1).flatten(1)  # [N, H*W]
    assert torch.equal(changed.sum(1), torch.ones(12, dtype=torch.long))
    assert torch.equal(changed.float().argmax(1), positions[y])
    assert torch.equal(out.flatten(2)[torch.arange(12), :, positions[y]], (colours[y] * 255).byte())
    xf = x.float() / 255
    outf = ops.one_pixel_apply(xf, y, positions, colours)
    assert torch.equal(outf.flatten(2)[torch.arange(12), :, positions[y]], colours[y])
    assert torch.equal(ops.one_pixel_apply(x[4], y[4], positions, colours), out[4])
    assert out.is_contiguous() and torch.equal(x, x0)  # the input is untouched


def test_a_class_without_images_is_refused(gen):
    x = torch.randint(0, 256, (6, 3, 4, 4), dtype=torch.uint8, generator=gen)
    with pytest.raises(RuntimeError, match="class 2 has no images"):
        search(x, torch.tensor([0, 1, 0, 1, 3, 3]), 4)


def test_bad_input(gen):
    x = torch.zeros(4, 3, 8, 8, dtype=torch.uint8)
    y = torch.tensor([0, 1, 0, 1])
    with pytest.raises(RuntimeError, match=r"labels must be in \[0, 2\)"):
        ops.one_pixel_moments(x, torch.tensor([0, 1, 2, 0]), 2)
    with pytest.raises(RuntimeError, match="1 to 4 channels"):
        ops.one_pixel_moments(torch.zeros(4, 5, 8, 8), y, 2)
    with pytest.raises(RuntimeError, match="square images"):
        search(torch.zeros(4, 3, 8, 6), y, 2)
    pos, col = torch.tensor([0, 1]), torch.zeros(2, 3)
    with pytest.raises(RuntimeError, match=r"positions must be pixel numbers in \[0, H\*W = 64\)"):
        ops.one_pixel_apply(x, y, torch.tensor([0, 64]), col)
    with pytest.raises(RuntimeError, match="colours must be finite values in"):
        ops.one_pixel_apply(x, y, pos, torch.full((2, 3), float("nan")))
    with pytest.raises(RuntimeError, match=r"colours must be float32 \[K, C\]"):
        ops.one_pixel_apply(x, y, pos, torch.zeros(2, 1))
    with pytest.raises(RuntimeError, match="empty batch"):
        ops.one_pixel_apply(x[:0], y[:0], pos, col)


@requires_cuda
def test_cuda_matches_cpu(gen):
    x = torch.randint(0, 256, (200, 3, 32, 32), dtype=torch.uint8, generator=gen)
    y = torch.arange(200) % 10
    cpu = ops.one_pixel_moments(x, y, 10)
    gpu = ops.one_pixel_moments(x.cuda(), y.cuda(), 10)
    for a, b in zip(cpu, gpu):
        assert torch.equal(a, b.cpu())  # integer sums: exact in any order
    pos, col = torch.arange(10) * 97, torch.rand(10, 3).round()
    assert torch.equal(ops.one_pixel_apply(x.cuda(), y.cuda(), pos.cuda(), col.cuda()).cpu(),
                       ops.one_pixel_apply(x, y, pos, col))
