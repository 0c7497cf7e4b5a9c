"""Purification specs: JPEG equals torchvision.io's and Pillow's codecs at every quality of
the sweep (bit for bit), low-pass / sharpening are poisonkit's ops, chains compose, bad
specs fail before any work."""
import io
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from poisonkit.defenses.sharpen import ssk_kernel
from poisonkit.editing.purify import JPEG_QUALITIES, default_specs, jpeg_quality, purification
from poisonkit.transforms import functional as F


def _pil(image: torch.Tensor, quality: int) -> torch.Tensor:
    buf = io.BytesIO()
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(buf, "JPEG", quality=quality)
    return torch.from_numpy(np.asarray(Image.open(buf)).copy()).permute(2, 0, 1)


def _torchvision(image: torch.Tensor, quality: int) -> torch.Tensor:
    import torchvision.io
    with warnings.catch_warnings():  # torchvision.io's codecs are deprecated since 0.29
        warnings.simplefilter("ignore")
        return torchvision.io.decode_jpeg(torchvision.io.encode_jpeg(image, quality=quality))


@pytest.mark.parametrize("quality", JPEG_QUALITIES)
def test_jpeg_equals_torchvision_and_pil(cifar, quality):
    x = cifar["x_test"][:12]
    out = purification(f"jpeg:{quality}")(x)
    assert torch.equal(out, torch.stack([_pil(im, quality) for im in x]))
    assert torch.equal(out, torch.stack([_torchvision(im, quality) for im in x]))
    assert not torch.equal(out, x)


def test_lowpass_sharpen_and_chains(cifar):
    x = cifar["x_test"][:4]
    low = purification("lowpass:0.3")(x)
    assert torch.equal(low, F.lowpass_image(x, 0.3))
    assert torch.equal(purification("lowpass")(x), F.lowpass_image(x, 0.5))
    sharp = purification("sharpen")(x)
    assert sharp.shape == x.shape and sharp.dtype == torch.uint8
    assert torch.equal(sharp, F.sharpen_image(x, ssk_kernel(2.5), "reflect"))
    assert torch.equal(purification("sharpen + lowpass:0.3")(x), F.lowpass_image(sharp, 0.3))
    assert torch.equal(purification("jpeg:50+jpeg:50")(x),
                       purification("jpeg:50")(purification("jpeg:50")(x)))
    assert torch.equal(purification("none")(x), x)


def test_default_specs_and_quality_axis():
    specs = default_specs()
    assert specs[0] == "none" and "jpeg:10" in specs and "jpeg:95" in specs
    for spec in specs:
        purification(spec)
    assert jpeg_quality("jpeg:40") == 40
    assert jpeg_quality("jpeg:40+lowpass") is None and jpeg_quality("sharpen") is None


@pytest.mark.parametrize("spec, match", [
    ("", "expected a spec"),
    ("blur", "unknown 'blur'"),
    ("jpeg", "needs a quality"),
    ("jpeg:0", "1-100"),
    ("jpeg:high", "bad parameter 'high'"),
    ("lowpass:1.5", "fraction in \\(0, 1\\]"),
    ("none:3", "takes no parameter"),
    ("jpeg:75+", "unknown ''"),
])
def test_bad_specs(spec, match):
    with pytest.raises(ValueError, match=match):
        purification(spec)
