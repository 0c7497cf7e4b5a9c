"""The LSP and OPS DALI operators against the torch poisons on the same real images: exact
for uint8, 1e-5 for float; both layouts, mixed sizes; errors naming the argument."""
from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("nvidia.dali")
from poisonkit import dali as pkdali  # noqa: E402
from poisonkit.poisons.lsp import LSPPoison  # noqa: E402
from poisonkit.poisons.one_pixel import OnePixelShortcut  # noqa: E402
from tests.conftest import requires_cuda  # noqa: E402
from tests.test_dali import assert_close, hwc, run_pipeline  # noqa: E402


def per_sample(values, dtype=np.int64):
    return [np.array([v], dtype) for v in values]


@pytest.mark.parametrize("key", [0, 2**64 - 1])
def test_lsp_perturb_equals_lsp_poison_uint8(cifar, key):
    pick = torch.arange(0, 10000, 625)
    x, y = cifar["x_train"][pick], cifar["y_train"][pick]
    indices = pick * 3 + 1
    poison = LSPPoison(10, key=key)
    (out,) = run_pipeline(
        lambda images, labels, indices: pkdali.lsp_perturb(images, labels, indices, poison),
        {"images": hwc(x), "labels": per_sample(y.tolist()),
         "indices": per_sample(indices.tolist(), np.int32)}, {"images": "HWC"})
    expected = poison.poison_batch(x, y, indices)
    assert not torch.equal(expected, x)
    for i in range(len(x)):
        assert_close(out[i], expected[i].permute(1, 2, 0))


def test_lsp_perturb_float_chw_mixed_sizes(cifar):
    x = cifar["x_train"]
    images = [x[0].float() / 255, x[5, :, :16, 8:32].float() / 255]
    poison = LSPPoison(10, key=5, patch=4)
    data = {"images": [im.numpy().copy() for im in images], "labels": per_sample([3, 7]),
            "indices": per_sample([11, 2**34])}
    (out,) = run_pipeline(lambda images, labels, indices: pkdali.lsp_perturb(
        images, labels, indices, poison), data, {"images": "CHW"})
    for i, im in enumerate(images):
        expected = poison.poison_batch(im, data["labels"][i][0], data["indices"][i][0])
        assert_close(out[i], expected)


def test_lsp_perturb_names_patch(cifar):
    x = cifar["x_train"][:2]
    with pytest.raises(RuntimeError, match="argument `patch`: 5 does not divide"):
        run_pipeline(lambda images, labels, indices: pkdali.lsp_perturb(
            images, labels, indices, patch=5),
            {"images": hwc(x), "labels": per_sample([0, 1]), "indices": per_sample([0, 1])},
            {"images": "HWC"})
    with pytest.raises(RuntimeError, match="argument `eps`"):
        run_pipeline(lambda images, labels, indices: pkdali.lsp_perturb(
            images, labels, indices, eps=float("nan")),
            {"images": hwc(x), "labels": per_sample([0, 1]), "indices": per_sample([0, 1])},
            {"images": "HWC"})


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_one_pixel_equals_torch(cifar, dtype):
    keep = torch.cat([torch.nonzero(cifar["y_train"] == k)[:40, 0] for k in range(10)])
    x, y = cifar["x_train"][keep], cifar["y_train"][keep]  # the file is sorted by class
    poison = OnePixelShortcut.search(x, y, 10)
    pick = torch.arange(0, 400, 37)
    xs = x[pick] if dtype == torch.uint8 else x[pick].float() / 255
    (out,) = run_pipeline(lambda images, labels: pkdali.one_pixel(images, labels, poison),
                          {"images": hwc(xs), "labels": per_sample(y[pick].tolist(), np.int32)},
                          {"images": "HWC"})
    expected = poison.poison_batch(xs, y[pick], pick)
    for i in range(len(pick)):
        assert_close(out[i], expected[i].permute(1, 2, 0))


def test_one_pixel_names_its_arguments(cifar):
    x = cifar["x_train"][:2]
    poison = OnePixelShortcut(torch.tensor([40, 0]), torch.tensor([0, 0]), torch.ones(2, 3))
    with pytest.raises(RuntimeError, match="arguments `rows`, `cols`: class 0's pixel"):
        run_pipeline(lambda images, labels: pkdali.one_pixel(images, labels, poison),
                     {"images": hwc(x), "labels": per_sample([0, 1])}, {"images": "HWC"})


@requires_cuda
def test_gpu_backends_equal_cpu(cifar):
    pick = torch.arange(0, 10000, 625)
    x, y = cifar["x_train"][pick], cifar["y_train"][pick]
    lsp, ops_poison = LSPPoison(10, key=9), OnePixelShortcut.search(x, y, 10)
    data = {"images": hwc(x), "labels": per_sample(y.tolist()),
            "indices": per_sample(pick.tolist())}

    def build(images, labels, indices):
        gpu = images.gpu()
        return (pkdali.lsp_perturb(gpu, labels, indices, lsp),
                pkdali.one_pixel(gpu, labels, ops_poison))

    lsp_out, ops_out = run_pipeline(build, data, {"images": "HWC"}, device_id=0)
    expected_lsp = lsp.poison_batch(x, y, pick)
    expected_ops = ops_poison.poison_batch(x, y, pick)
    for i in range(len(x)):
        got = torch.from_numpy(lsp_out[i]).permute(2, 0, 1).int()
        assert (got - expected_lsp[i].int()).abs().max() <= 1  # FMA contraction at a boundary
        assert_close(ops_out[i], expected_ops[i].permute(1, 2, 0))
