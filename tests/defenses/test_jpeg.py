"""JPEG round trip against Pillow's encoder/decoder (an independent libjpeg build, so a
small tolerance), and its errors."""
import io

import numpy as np
import pytest
import torch
from PIL import Image

from poisonkit.data import synthetic_images
from poisonkit.defenses.jpeg import jpeg_roundtrip


def _pil_jpeg(image: torch.Tensor, quality: int) -> torch.Tensor:
    buf = io.BytesIO()
    Image.fromarray(image.permute(1, 2, 0).squeeze(-1).numpy()).save(buf, "JPEG", quality=quality)
    out = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
    return torch.from_numpy(out.copy()).reshape(image.shape[1], image.shape[2], -1).permute(2, 0, 1)


@pytest.mark.parametrize("quality", [10, 75])
@pytest.mark.parametrize("channels", [3, 1])
def test_matches_pillow(quality, channels):
    x, _ = synthetic_images(6)
    x = x[:, :channels]
    out = jpeg_roundtrip(x, quality)
    assert out.shape == x.shape and out.dtype == torch.uint8
    ref = torch.stack([_pil_jpeg(im, quality) for im in x])
    assert (out.float() - ref.float()).abs().mean() < 1.0
    assert (out.float() - x.float()).abs().mean() > (0.5 if quality == 10 else 0.05)


def test_real_images(cifar):
    x = cifar["x_train"][:8]
    ref = torch.stack([_pil_jpeg(im, 10) for im in x])
    assert (jpeg_roundtrip(x, 10).float() - ref.float()).abs().mean() < 1.0


def test_empty_batch():
    assert jpeg_roundtrip(torch.zeros(0, 3, 8, 8, dtype=torch.uint8)).shape == (0, 3, 8, 8)


@pytest.mark.parametrize("x, quality, match", [
    (torch.zeros(1, 3, 8, 8), 10, "uint8"),
    (torch.zeros(3, 8, 8, dtype=torch.uint8), 10, "NCHW"),
    (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), 0, "quality"),
    (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), 10.0, "quality"),
])
def test_bad_inputs(x, quality, match):
    with pytest.raises(ValueError, match=match):
        jpeg_roundtrip(x, quality)
