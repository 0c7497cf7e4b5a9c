"""LSP ops against a float64 NumPy reference written from the paper's code (make_classification
points z A + centre, reshape [H/p, W/p, C], patch repeat, L2 scaling, add, clip, truncate),
with every draw recomputed by the pure-Python Philox of test_ar; norms, patch structure,
class clustering, batch/order/thread invariance, bad input."""
import math

import numpy as np
import pytest
import torch

from poisonkit import ops
from tests.conftest import requires_cuda
from tests.ops.test_ar import M32, philox4x32_10, reference_normal

CLASS_STREAM = 0x4C530001
SAMPLE_STREAM = 0x4C530002
EPS = 6 / 255


def reference_classes(key, num_classes, features, class_sep):
    """Centres and mixing matrices from the documented draws, float64."""
    centres = np.empty((num_classes, features))
    mixing = np.empty((num_classes, features * features))
    for k in range(num_classes):
        words = []
        for block in range((features + features * features + 3) // 4):
            words += philox4x32_10((block, k, 0, CLASS_STREAM), (key & M32, key >> 32))
        centres[k] = [class_sep if w >> 31 else -class_sep for w in words[:features]]
        u = (np.array(words[features:features + features * features], dtype=np.float64)
             // 2**9 + 0.5) / 2**23
        mixing[k] = 2 * u - 1
    return centres, mixing.reshape(num_classes, features, features)


def reference_perturbation(centres, mixing, label, index, key, shape, patch, eps):
    """The reference pipeline for one sample, float64 [C, H, W]."""
    c, h, w = shape
    features = centres.shape[1]
    z = np.array([reference_normal(key, index, f, SAMPLE_STREAM) for f in range(features)])
    point = z @ mixing[label] + centres[label]
    grid = point.reshape(h // patch, w // patch, c)  # the reference's reshape (HWC)
    image = np.repeat(np.repeat(grid, patch, 0), patch, 1)
    image = image / np.linalg.norm(image) * math.sqrt(eps**2 * c * h * w)
    return image.transpose(2, 0, 1)


@pytest.fixture(scope="module")
def tables():
    return ops.lsp_classes(77, 10, 48, 10.0)


def test_classes_match_python_philox():
    centres, mixing = ops.lsp_classes(2**40 + 3, 3, 12, 10.0)
    ref_c, ref_m = reference_classes(2**40 + 3, 3, 12, 10.0)
    assert centres.dtype == torch.float32 and mixing.shape == (3, 12, 12)
    assert torch.equal(centres, torch.tensor(ref_c, dtype=torch.float32))
    assert np.allclose(mixing.numpy(), ref_m, atol=1e-7)


def test_class_draws_have_make_classification_distribution(tables):
    centres, mixing = tables
    assert set(centres.unique().tolist()) == {-10.0, 10.0}
    assert abs((centres > 0).float().mean() - 0.5) < 0.05
    assert len({tuple(c) for c in centres.tolist()}) == 10  # distinct hypercube vertices
    assert mixing.abs().max() < 1 and abs(mixing.mean()) < 0.01
    assert abs(mixing.var() - 1 / 3) < 0.01  # uniform on (-1, 1)


@pytest.mark.parametrize("shape,patch", [((3, 32, 32), 8), ((3, 16, 24), 4), ((1, 8, 8), 2)])
def test_generate_matches_float64_reference(shape, patch):
    c, h, w = shape
    features = (h // patch) * (w // patch) * c
    key = 12345
    centres, mixing = ops.lsp_classes(key, 4, features, 10.0)
    ref_c, ref_m = reference_classes(key, 4, features, 10.0)
    labels, indices = torch.tensor([0, 3, 1]), torch.tensor([5, 0, 2**33 + 1])
    out = ops.lsp_generate(centres, mixing, labels, indices, key, c, h, w, patch, EPS)
    assert out.shape == (3, c, h, w) and out.dtype == torch.float32
    for n in range(3):
        ref = reference_perturbation(ref_c, ref_m, int(labels[n]), int(indices[n]), key, shape,
                                     patch, EPS)
        assert np.allclose(out[n].numpy(), ref, rtol=1e-4, atol=1e-6)


def test_norms_exact_and_patches_constant(tables):
    out = ops.lsp_generate(*tables, torch.arange(40) % 10, torch.arange(40), 77, 3, 32, 32)
    norms = out.flatten(1).double().norm(dim=1)
    assert torch.allclose(norms, torch.full_like(norms, math.sqrt(3072) * EPS), rtol=1e-6)
    blocks = out.unflatten(2, (4, 8)).unflatten(4, (4, 8))  # [N, C, 4, 8, 4, 8]
    assert torch.equal(blocks, blocks[:, :, :, :1, :, :1].expand_as(blocks))


def test_points_cluster_by_class(tables):
    labels = torch.arange(500) % 10
    out = ops.lsp_generate(*tables, labels, torch.arange(500), 77, 3, 32, 32).flatten(1)
    means = torch.stack([out[labels == k].mean(0) for k in range(10)])
    nearest = torch.cdist(out, means).argmin(1)
    assert (nearest == labels).float().mean() > 0.99


def test_same_key_index_same_perturbation_whatever_the_batch(tables):
    labels, indices = torch.arange(64) % 10, torch.randperm(64) * 3
    whole = ops.lsp_generate(*tables, labels, indices, 77, 3, 32, 32)
    order = torch.randperm(64)
    shuffled = ops.lsp_generate(*tables, labels[order], indices[order], 77, 3, 32, 32)
    assert torch.equal(shuffled, whole[order])
    one = ops.lsp_generate(*tables, labels[5:6], indices[5:6], 77, 3, 32, 32)
    assert torch.equal(one[0], whole[5])
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert torch.equal(ops.lsp_generate(*tables, labels, indices, 77, 3, 32, 32), whole)
    finally:
        torch.set_num_threads(threads)
    other_key = ops.lsp_generate(*tables, labels, indices, 78, 3, 32, 32)
    assert not torch.equal(other_key, whole)


def test_poison_adds_clips_and_truncates(tables, gen):
    x8 = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8, generator=gen)
    x8[0] = 255
    x8[1] = 0
    labels, indices = torch.arange(16) % 10, torch.arange(16) + 100
    delta = ops.lsp_generate(*tables, labels, indices, 77, 3, 32, 32).double()
    ref = np.clip((x8.double() / 255 + delta).numpy() * 255, 0, 255).astype(np.uint8)
    out = ops.lsp_poison(x8, *tables, labels, indices, 77)
    diff = np.abs(out.numpy().astype(int) - ref.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3  # float32 vs float64 at a boundary
    xf = x8.float() / 255
    outf = ops.lsp_poison(xf, *tables, labels, indices, 77)
    assert torch.allclose(outf, (xf + delta.float()).clamp(0, 1), atol=1e-6)
    single = ops.lsp_poison(x8[3], *tables, labels[3], indices[3], 77)
    assert torch.equal(single, out[3])


@pytest.mark.parametrize("change,match", [
    (dict(eps=float("nan")), "eps must be a positive"),
    (dict(eps=0.0), "eps must be a positive"),
    (dict(eps=-1.0), "eps must be a positive"),
    (dict(patch=7), "patch must be >= 1 and divide"),
    (dict(patch=4), "needs \\(H/patch\\)\\(W/patch\\)C = 192"),
    (dict(labels=torch.tensor([0, 10])), r"labels must be in \[0, 10\)"),
    (dict(labels=torch.tensor([0])), "labels must be \\[N\\]"),
    (dict(indices=torch.tensor([0, -1])), "indices must be >= 0"),
    (dict(indices=torch.tensor([], dtype=torch.int64), labels=torch.tensor([], dtype=torch.int64)),
     "empty batch"),
    (dict(centres=torch.zeros(10, 48, dtype=torch.float64)), "must be float32"),
    (dict(mixing=torch.zeros(10, 48, 47)), r"mixing must be \[K, F, F\]"),
])
def test_generate_bad_input(tables, change, match):
    args = dict(centres=tables[0], mixing=tables[1], labels=torch.tensor([0, 1]),
                indices=torch.tensor([0, 1]), key=0, channels=3, height=32, width=32, patch=8,
                eps=EPS)
    args.update(change)
    with pytest.raises(RuntimeError, match=match):
        ops.lsp_generate(**args)


def test_poison_bad_input(tables):
    x = torch.zeros(2, 3, 32, 32, dtype=torch.uint8)
    labels, indices = torch.tensor([0, 1]), torch.tensor([0, 1])
    with pytest.raises(RuntimeError, match="uint8 or float32"):
        ops.lsp_poison(x.double(), *tables, labels, indices, 0)
    with pytest.raises(RuntimeError, match="x holds 2 images but indices holds 1"):
        ops.lsp_poison(x, *tables, labels[:1], indices[:1], 0)
    with pytest.raises(RuntimeError, match="needs \\(H/patch\\)"):
        ops.lsp_poison(torch.zeros(2, 3, 16, 16), *tables, labels, indices, 0)
    with pytest.raises(RuntimeError, match="class_sep must be"):
        ops.lsp_classes(0, 10, 48, float("nan"))
    with pytest.raises(RuntimeError, match="features must be in"):
        ops.lsp_classes(0, 10, 0)


def test_tables_are_scanned_unless_told_not_to(tables):
    centres, mixing = tables
    x = torch.zeros(2, 3, 32, 32, dtype=torch.uint8)
    labels, indices = torch.tensor([0, 1]), torch.tensor([0, 1])
    bad_centres = centres.clone()
    bad_centres[2, 5] = float("nan")
    with pytest.raises(RuntimeError, match="centres and mixing must be finite"):
        ops.lsp_poison(x, bad_centres, mixing, labels, indices, 0)
    bad_mixing = mixing.clone()
    bad_mixing[1, 3, 7] = float("inf")
    with pytest.raises(RuntimeError, match="centres and mixing must be finite"):
        ops.lsp_generate(centres, bad_mixing, labels, indices, 0, 3, 32, 32)
    # tables straight from lsp_classes: the scan is skipped, the result is the same
    assert torch.equal(ops.lsp_poison(x, *tables, labels, indices, 0, check_tables=False),
                       ops.lsp_poison(x, *tables, labels, indices, 0))
    assert torch.equal(ops.lsp_generate(*tables, labels, indices, 0, 3, 32, 32, check_tables=False),
                       ops.lsp_generate(*tables, labels, indices, 0, 3, 32, 32))


@requires_cuda
def test_cuda_matches_cpu(tables):
    labels, indices = torch.arange(64) % 10, torch.arange(64) * 7
    cpu = ops.lsp_generate(*tables, labels, indices, 31, 3, 32, 32)
    gpu = ops.lsp_generate(*(t.cuda() for t in tables), labels.cuda(), indices.cuda(), 31, 3, 32, 32)
    assert torch.allclose(gpu.cpu(), cpu, rtol=1e-4, atol=1e-6)
    x8 = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    cpu8 = ops.lsp_poison(x8, *tables, labels, indices, 31)
    gpu8 = ops.lsp_poison(x8.cuda(), *(t.cuda() for t in tables), labels.cuda(), indices.cuda(), 31)
    assert (gpu8.cpu().int() - cpu8.int()).abs().max() <= 1  # FMA contraction at a boundary
    xf = x8.float() / 255
    gpuf = ops.lsp_poison(xf.cuda(), *(t.cuda() for t in tables), labels.cuda(), indices.cuda(), 31)
    assert torch.allclose(gpuf.cpu(), ops.lsp_poison(xf, *tables, labels, indices, 31), atol=1e-5)
