"""JPEG round trip: exactly Pillow's encoder/decoder with its defaults (4:2:0 chroma for
RGB, grayscale JPEG for one channel) on CPU and CUDA, any input strides; its errors."""
import io

import numpy as np
import pytest
import torch
from PIL import Image

from poisonkit.data import synthetic_images
from poisonkit.defenses.jpeg import jpeg_roundtrip
from tests.conftest import requires_cuda


def _pil_jpeg(image: torch.Tensor, quality: int, **options) -> torch.Tensor:
    """One CHW image through Pillow's JPEG codec."""
    buf = io.BytesIO()
    Image.fromarray(image.permute(1, 2, 0).squeeze(-1).numpy()).save(buf, "JPEG", quality=quality,
                                                                      **options)
    out = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
    return torch.from_numpy(out.copy()).reshape(image.shape[1], image.shape[2], -1).permute(2, 0, 1)


@pytest.mark.parametrize("quality", [10, 75])
@pytest.mark.parametrize("channels", [3, 1])
def test_is_pillows_codec(quality, channels):
    x, _ = synthetic_images(6)
    x = x[:, :channels]
    out = jpeg_roundtrip(x, quality)
    assert out.shape == x.shape and out.dtype == torch.uint8 and out.is_contiguous()
    assert torch.equal(out, torch.stack([_pil_jpeg(im, quality) for im in x]))
    assert (out.float() - x.float()).abs().mean() > (0.5 if quality == 10 else 0.05)


def test_real_images(cifar):
    x = cifar["x_train"][:8]
    assert torch.equal(jpeg_roundtrip(x, 10), torch.stack([_pil_jpeg(im, 10) for im in x]))


def test_colour_is_subsampled_420():
    # Constant luma-free detail: colour alternating every pixel column. 4:2:0 averages
    # chroma over 2x2 blocks, so even at quality 95 the stripes wash out; 4:4:4 keeps them.
    x = torch.zeros(1, 3, 16, 16, dtype=torch.uint8)
    x[0, 0, :, ::2] = 200
    x[0, 2, :, 1::2] = 200
    out = jpeg_roundtrip(x, 95)
    err_420 = (out.float() - x.float()).abs().mean()
    err_444 = (_pil_jpeg(x[0], 95, subsampling=0).float() - x.float()).abs().mean()
    assert err_420 > 40 > 4 > err_444


def test_any_strides_give_the_same_result():
    x, _ = synthetic_images(4)
    expected = jpeg_roundtrip(x, 10)
    assert torch.equal(jpeg_roundtrip(x.contiguous(memory_format=torch.channels_last), 10), expected)
    wide = torch.zeros(4, 3, 32, 64, dtype=torch.uint8)
    wide[..., ::2] = x
    assert torch.equal(jpeg_roundtrip(wide[..., ::2], 10), expected)


def test_empty_batch():
    assert jpeg_roundtrip(torch.zeros(0, 3, 8, 8, dtype=torch.uint8)).shape == (0, 3, 8, 8)


@pytest.mark.parametrize("x, quality, match", [
    (torch.zeros(1, 3, 8, 8), 10, "images: .*uint8"),
    (torch.zeros(3, 8, 8, dtype=torch.uint8), 10, "images: .*NCHW"),
    (torch.zeros(1, 4, 8, 8, dtype=torch.uint8), 10, "images: .*1 or 3 channels"),
    (torch.zeros(1, 3, 0, 8, dtype=torch.uint8), 10, "images: .*height and width"),
    (np.zeros((1, 3, 8, 8), np.uint8), 10, "images: .*tensor"),
    (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), 0, "quality"),
    (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), 10.0, "quality"),
    (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), True, "quality"),
])
def test_bad_inputs(x, quality, match):
    with pytest.raises(ValueError, match=match):
        jpeg_roundtrip(x, quality)


@requires_cuda
@pytest.mark.parametrize("channels", [3, 1])
def test_cuda_is_the_cpu_defense(cifar, channels):
    x = cifar["x_train"][:64, :channels]
    out = jpeg_roundtrip(x.cuda(), 10)
    assert out.device == x.cuda().device
    assert torch.equal(out.cpu(), jpeg_roundtrip(x, 10))


@requires_cuda
def test_cuda_side_stream_reads_what_the_caller_wrote(cifar):
    x = cifar["x_train"][:256]
    expected = jpeg_roundtrip(x, 10)
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        # Queue enough work ahead of the write that a read not ordered after it sees zeros.
        big = torch.randn(4096, 4096, device="cuda")
        for _ in range(20):
            big = big @ big / 4096
        images = torch.zeros_like(x, device="cuda")
        images.copy_(x.cuda(non_blocking=True) + (big[0, 0] * 0).to(torch.uint8))
        out = jpeg_roundtrip(images, 10)
    side.synchronize()
    assert torch.equal(out.cpu(), expected)
