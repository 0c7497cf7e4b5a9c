"""The class-wise blur (CUDA) poison against the official algorithm, re-written here in its
own terms: np.random.seed + per-class uniform kernels, one-image-at-a-time float32 conv2d
with padding 1, division by the image max, *255, clip, astype(uint8)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from poisonkit.poisons.classwise_blur import class_kernels
from poisonkit.transforms import ClasswiseBlur


def reference_kernels(num_classes, blur_parameter, kernel_size, seed):
    state = np.random.get_state()
    np.random.seed(seed)
    weights = []
    for _ in range(num_classes):
        w = np.random.uniform(low=0, high=blur_parameter, size=(3, 1, kernel_size, kernel_size))
        shape = w[0][0].shape
        w[0, 0, np.random.randint(shape[0]), np.random.randint(shape[1])] = 1.0
        w[1] = w[0]
        w[2] = w[0]
        weights.append(torch.tensor(w).float())  # copied into a float32 Conv2d weight
    np.random.set_state(state)
    return weights


def reference_poison(images_hwc_uint8, labels, weights):
    out = np.empty_like(images_hwc_uint8)
    for i, (img, label) in enumerate(zip(images_hwc_uint8, labels)):
        x = torch.from_numpy(img).permute(2, 0, 1).float().div(255).unsqueeze(0)  # ToTensor
        z = F.conv2d(x, weights[label], padding=1, groups=3)
        z = z / z.max()
        scaled = z[0].numpy().transpose(1, 2, 0) * 255
        out[i] = np.clip(scaled, 0, 255).astype(np.uint8)
    return out


@pytest.mark.parametrize("num_classes, seed, pb", [(10, 0, 0.3), (100, 3, 0.5)])
def test_kernels_follow_reference_sequence(num_classes, seed, pb):
    ours = class_kernels(num_classes, pb, 3, seed)
    ref = reference_kernels(num_classes, pb, 3, seed)
    assert ours.shape == (num_classes, 3, 3)
    for k in range(num_classes):
        for c in range(3):
            assert torch.equal(ours[k], ref[k][c, 0])


def test_seed0_kernels_have_one_unit_tap_each():
    k = class_kernels()
    assert ((k == 1.0).sum(dim=(1, 2)) == 1).all()
    others = k[k != 1.0]
    assert (others >= 0).all() and (others < 0.3).all()


def test_poison_matches_reference_on_real_images(cifar):
    x = cifar["x_train"][::50]  # 200 images, all classes
    y = cifar["y_train"][::50]
    poison = ClasswiseBlur(num_classes=10, blur_parameter=0.3, seed=0)
    ours, labels = poison(x, y)
    assert labels is y
    ref = reference_poison(x.permute(0, 2, 3, 1).numpy(), y.numpy(),
                           reference_kernels(10, 0.3, 3, 0))
    ref = torch.from_numpy(ref).permute(0, 3, 1, 2)
    diff = (ours.int() - ref.int()).abs()
    # Same float32 math; conv2d's summation order may differ by an ulp, which truncation
    # can turn into one level on a pixel sitting on an integer boundary.
    assert diff.max() <= 1
    assert (diff > 0).float().mean() < 1e-3


def test_poison_float_input_gives_normalised_values(cifar):
    x = cifar["x_train"][:20]
    y = cifar["y_train"][:20]
    out, _ = ClasswiseBlur()(x.float() / 255, y)
    assert out.dtype == torch.float32
    assert torch.allclose(out.amax(dim=(1, 2, 3)), torch.ones(20))
    as_uint8, _ = ClasswiseBlur()(x, y)
    assert ((out * 255).floor().to(torch.uint8).int() - as_uint8.int()).abs().max() <= 1


@pytest.mark.parametrize("kwargs, match", [
    ({"num_classes": 0}, "num_classes"),
    ({"kernel_size": 4}, "kernel_size"),
    ({"blur_parameter": float("nan")}, "blur_parameter"),
    ({"blur_parameter": -1.0}, "blur_parameter"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        class_kernels(**kwargs)
