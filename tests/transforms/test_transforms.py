"""Transforms: every input type (PIL, CHW, NCHW, tv_tensors), v2.Compose with labels,
the kernels they apply, and their errors."""
from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch
import torch.nn.functional as F
from torchvision import tv_tensors
from torchvision.transforms import v2

from poisonkit.defenses.sharpen import rsk_kernels, ssk_kernel
from poisonkit.transforms import ClasswiseBlur, RandomSharpen, Sharpen


@pytest.fixture
def images(gen):
    return torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, generator=gen)


def conv_valid_uint8(x, kernels):
    """Reference sharpening of uint8 NCHW with one [3, 3] kernel per image, 'valid'."""
    unit = x.double() / 255
    out = torch.stack([F.conv2d(unit[i : i + 1], k.double().expand(3, 1, 3, 3), groups=3)[0]
                       for i, k in enumerate(kernels)])
    return torch.floor((out * 255).clamp(0, 255) + 0.5).clamp(0, 255)


def test_sharpen_batch_matches_conv2d(images):
    out = Sharpen()(images)
    assert out.shape == (4, 3, 30, 30) and out.dtype == torch.uint8
    ref = conv_valid_uint8(images, [ssk_kernel()] * 4)
    assert (out.double() - ref).abs().max() <= 1


def test_random_sharpen_uses_one_drawn_kernel_per_image(images):
    out = RandomSharpen(seed=11)(images)
    kernels = rsk_kernels(4, generator=torch.Generator().manual_seed(11))
    ref = conv_valid_uint8(images, kernels)
    assert (out.double() - ref).abs().max() <= 1
    # a second call draws new kernels
    t = RandomSharpen(seed=11)
    assert not torch.equal(t(images), t(images))


@pytest.mark.parametrize("transform", [Sharpen(padding="reflect"), RandomSharpen(seed=0, padding="zeros")])
def test_input_types_round_trip(transform, images):
    chw = transform(images[0])
    assert isinstance(chw, torch.Tensor) and chw.shape == (3, 32, 32)
    pil = transform(PIL.Image.fromarray(images[0].permute(1, 2, 0).numpy()))
    assert isinstance(pil, PIL.Image.Image) and pil.size == (32, 32)
    wrapped = transform(tv_tensors.Image(images))
    assert isinstance(wrapped, tv_tensors.Image) and wrapped.shape == (4, 3, 32, 32)
    f = transform(images.float() / 255)
    assert f.dtype == torch.float32 and 0 <= f.min() and f.max() <= 1
    gray = transform(PIL.Image.fromarray(images[0, 0].numpy(), mode="L"))
    assert gray.mode == "L"


def test_sharpen_pil_equals_tensor(images):
    img = images[1]
    pil_out = Sharpen()(PIL.Image.fromarray(img.permute(1, 2, 0).numpy()))
    assert np.array_equal(np.asarray(pil_out), Sharpen()(img).permute(1, 2, 0).numpy())


def test_classwise_blur_sample_and_batch_agree(images):
    blur = ClasswiseBlur()
    labels = torch.tensor([3, 1, 4, 1])
    batch, out_labels = blur(images, labels)
    assert out_labels is labels
    for i in range(4):
        single, label = blur(images[i], int(labels[i]))
        assert label == int(labels[i])
        assert torch.equal(single, batch[i])


def test_classwise_blur_in_compose_passes_labels_through(images):
    pipeline = v2.Compose([ClasswiseBlur(), v2.RandomHorizontalFlip(p=1.0), Sharpen(padding="reflect")])
    img, label = pipeline(images[0], 7)
    assert img.shape == (3, 32, 32) and label == 7
    poisoned, _ = ClasswiseBlur()(images[0], 7)
    assert torch.equal(img, Sharpen(padding="reflect")(poisoned.flip(-1)))


def test_classwise_blur_pil(images):
    pil = PIL.Image.fromarray(images[0].permute(1, 2, 0).numpy())
    out, label = ClasswiseBlur()(pil, 2)
    assert isinstance(out, PIL.Image.Image) and label == 2
    assert np.array_equal(np.asarray(out), ClasswiseBlur()(images[0], 2)[0].permute(1, 2, 0).numpy())


def test_classwise_blur_exposes_kernels():
    blur = ClasswiseBlur(num_classes=20, seed=5)
    assert blur.kernels.shape == (20, 3, 3)
    assert "kernels" in blur.state_dict()


@pytest.mark.parametrize("labels, error, match", [
    (torch.tensor([0, 1, 2, 10]), ValueError, r"\[0, 10\)"),
    (torch.tensor([0, -1, 2, 3]), ValueError, r"\[0, 10\)"),
    (torch.tensor([0, 1, 2]), ValueError, "shape"),
    (torch.tensor([0.0, 1.0, 2.0, 3.0]), TypeError, "integer"),
])
def test_classwise_blur_bad_labels(images, labels, error, match):
    with pytest.raises(error, match=match):
        ClasswiseBlur()(images, labels)


def test_bad_construction_and_input(images):
    with pytest.raises(ValueError, match="padding"):
        Sharpen(padding="circular")
    with pytest.raises(ValueError, match="center"):
        Sharpen(center=float("nan"))
    with pytest.raises(ValueError, match="std"):
        RandomSharpen(std=float("nan"))
    with pytest.raises(ValueError, match="generator, seed"):
        RandomSharpen(generator=torch.Generator(), seed=1)
    with pytest.raises(TypeError, match="image"):
        ClasswiseBlur()("not an image", 0)
    with pytest.raises(RuntimeError, match="uint8 or float32"):
        Sharpen()(images.double())
