"""filter2d against an independent float64 reference (per-image conv2d), every padding,
dtype, layout and kernel size, on CPU and CUDA; bad input (opcheck and torch.compile:
test_op_contracts)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from poisonkit import ops
from tests.conftest import requires_cuda

TORCH_PAD = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate"}


def reference(x, weights, padding="zeros", normalize="none", rounding="nearest", clamp=True):
    """Per-image depthwise conv2d in float64, written from the op's definition."""
    unit = x.double() / 255 if x.dtype == torch.uint8 else x.double()
    n, c = unit.shape[:2]
    outs = []
    for i in range(n):
        w = weights[i].double()
        w = w.expand(c, *w.shape[-2:]) if w.dim() == 2 or w.shape[0] == 1 else w
        w = w.reshape(c, 1, *w.shape[-2:])
        img = unit[i : i + 1]
        if padding != "valid":
            ph, pw = w.shape[-2] // 2, w.shape[-1] // 2
            img = F.pad(img, (pw, pw, ph, ph), mode=TORCH_PAD[padding])
        z = F.conv2d(img, w, groups=c)[0]
        if normalize == "max" and z.max() > 0:
            z = z / z.max()
        outs.append(z)
    z = torch.stack(outs)
    if x.dtype == torch.uint8:
        return Quantized(z * 255, rounding)
    return z.clamp(0, 1).float() if clamp else z.float()


class Quantized:
    """A float64 reference for uint8 output: the exact value 255*z before rounding, so that
    a comparison can tell a real error from a tie that float32 may break either way (sharp
    kernels on uint8 images hit exact .5 ties often)."""

    def __init__(self, scaled, rounding):
        self.scaled = scaled.clamp(0, 255)
        self.rounding = rounding
        offset = 0.5 if rounding == "nearest" else 0.0
        self.value = torch.floor(self.scaled + offset).clamp(0, 255).to(torch.uint8)
        frac = torch.frac(self.scaled + offset)
        self.tie = (frac < 1e-4) | (frac > 1 - 1e-4)


def assert_matches(out, ref):
    if isinstance(ref, Quantized):
        assert out.shape == ref.value.shape and out.dtype == torch.uint8
        diff = (out.int() - ref.value.int()).abs()
        assert diff.max() <= 1
        assert not ((diff > 0) & ~ref.tie).any(), "uint8 mismatch away from a rounding tie"
    else:
        assert out.shape == ref.shape and out.dtype == ref.dtype
        torch.testing.assert_close(out, ref, atol=2e-6, rtol=1e-5)


def make_input(dtype, shape, gen):
    if dtype == torch.uint8:
        return torch.randint(0, 256, shape, dtype=torch.uint8, generator=gen)
    return torch.rand(shape, generator=gen)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
@pytest.mark.parametrize("padding", ["zeros", "reflect", "replicate", "valid"])
@pytest.mark.parametrize("ksize", [1, 3, 5, 7])
@pytest.mark.parametrize("per_channel", [False, True])
def test_random_inputs(dtype, padding, ksize, per_channel, gen):
    x = make_input(dtype, (4, 3, 13, 17), gen)
    wshape = (4, 3, ksize, ksize) if per_channel else (4, ksize, ksize)
    w = torch.randn(wshape, generator=gen) * 0.4
    out = ops.filter2d(x, w, padding=padding)
    assert_matches(out, reference(x, w, padding))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
@pytest.mark.parametrize("rounding", ["nearest", "truncate"])
def test_normalize_max(dtype, rounding, gen):
    x = make_input(dtype, (5, 3, 16, 16), gen)
    w = torch.rand(5, 3, 3, generator=gen)
    out = ops.filter2d(x, w, normalize="max", rounding=rounding)
    assert_matches(out, reference(x, w, normalize="max", rounding=rounding))
    if dtype == torch.float32:  # each image's max becomes exactly 1
        assert torch.allclose(out.amax(dim=(1, 2, 3)), torch.ones(5))


def test_rectangular_kernel_and_unclamped_float(gen):
    x = torch.rand(2, 2, 9, 11, generator=gen)
    w = torch.randn(2, 3, 5, generator=gen)
    out = ops.filter2d(x, w, padding="reflect", clamp=False)
    assert_matches(out, reference(x, w, "reflect", clamp=False))
    assert out.min() < 0 or out.max() > 1  # unclamped values do leave [0, 1]


def test_chw_single_image(gen):
    x = make_input(torch.uint8, (3, 12, 12), gen)
    w = torch.randn(3, 3, generator=gen)
    out = ops.filter2d(x, w, padding="replicate")
    assert out.shape == (3, 12, 12)
    assert_matches(out.unsqueeze(0), reference(x.unsqueeze(0), w.unsqueeze(0), "replicate"))


def test_uint8_rounding_is_half_up_and_saturating():
    # 1x1 kernels make the expected value exact: v * k, then round half up and saturate.
    x = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    out = ops.filter2d(x, torch.full((1, 1, 1), 0.5))
    expected = torch.floor(torch.arange(256) * 0.5 + 0.5).to(torch.uint8).reshape(1, 1, 16, 16)
    assert torch.equal(out, expected)
    assert ops.filter2d(x, torch.full((1, 1, 1), 3.0)).max() == 255
    assert ops.filter2d(x, torch.full((1, 1, 1), -1.0)).max() == 0
    trunc = ops.filter2d(x, torch.full((1, 1, 1), 0.5), rounding="truncate")
    assert torch.equal(trunc, (torch.arange(256) // 2).to(torch.uint8).reshape(1, 1, 16, 16))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_non_contiguous_and_channels_last(dtype, gen):
    base = make_input(dtype, (6, 3, 20, 24), gen)
    w = torch.randn(3, 3, 3, generator=gen)
    sliced = base[::2, :, 2:18, ::2]
    assert not sliced.is_contiguous()
    assert_matches(ops.filter2d(sliced, w), reference(sliced.contiguous(), w))
    cl = base[:3].contiguous(memory_format=torch.channels_last)
    assert_matches(ops.filter2d(cl, w), reference(base[:3], w))


def test_real_images_sharpen(cifar):
    x = cifar["x_train"][::250]
    k = torch.tensor([[0, -0.375, 0], [-0.375, 2.5, -0.375], [0, -0.375, 0]])
    w = k.expand(len(x), 3, 3)
    for padding in ("valid", "reflect"):
        assert_matches(ops.filter2d(x, w, padding=padding), reference(x, w, padding))


@pytest.mark.parametrize("x, w, match", [
    (torch.zeros(2, 3, 8, 8, dtype=torch.int32), torch.ones(2, 3, 3), "uint8 or float32"),
    (torch.zeros(2, 3, 8, 8, dtype=torch.float64), torch.ones(2, 3, 3), "uint8 or float32"),
    (torch.zeros(8, 8), torch.ones(2, 3, 3), "NCHW"),
    (torch.zeros(1, 2, 3, 8, 8), torch.ones(1, 3, 3), "NCHW"),
    (torch.zeros(0, 3, 8, 8), torch.ones(0, 3, 3), "empty batch"),
    (torch.zeros(2, 3, 8, 8), torch.ones(3, 3, 3), "3 kernels but x holds 2"),
    (torch.zeros(2, 3, 8, 8), torch.ones(2, 4, 4), "odd"),
    (torch.zeros(2, 3, 8, 8), torch.ones(2, 9, 9), "odd and at most 7"),
    (torch.zeros(2, 3, 8, 8), torch.ones(2, 3, 3, dtype=torch.float64), "weights must be float32"),
    (torch.zeros(2, 3, 8, 8), torch.ones(2, 2, 3, 3), "C = 1 or C"),
    (torch.zeros(2, 3, 8, 8), torch.full((2, 3, 3), float("nan")), "NaN or inf"),
    (torch.zeros(2, 3, 8, 8), torch.full((2, 3, 3), float("inf")), "NaN or inf"),
    (torch.zeros(3, 8, 8), torch.ones(2, 2, 3, 3), "for a CHW image"),
])
def test_bad_input(x, w, match):
    with pytest.raises((RuntimeError, ValueError), match=match):
        ops.filter2d(x, w)


@pytest.mark.parametrize("kwargs, match", [
    ({"padding": "circular"}, "padding must be"),
    ({"normalize": "l2"}, "normalize must be"),
    ({"rounding": "floor"}, "rounding must be"),
])
def test_unknown_options(kwargs, match):
    with pytest.raises(RuntimeError, match=match):
        ops.filter2d(torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 3), **kwargs)


def test_too_small_for_padding():
    with pytest.raises(RuntimeError, match="valid"):
        ops.filter2d(torch.zeros(1, 3, 4, 4), torch.ones(1, 5, 5), padding="valid")
    with pytest.raises(RuntimeError, match="reflect"):
        ops.filter2d(torch.zeros(1, 3, 2, 2), torch.ones(1, 5, 5), padding="reflect")


def test_not_a_tensor():
    with pytest.raises(TypeError, match="torch.Tensors"):
        ops.filter2d([[0.0]], torch.ones(1, 3, 3))


@requires_cuda
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
@pytest.mark.parametrize("padding", ["zeros", "reflect", "replicate", "valid"])
@pytest.mark.parametrize("normalize,rounding", [("none", "nearest"), ("max", "truncate")])
def test_cuda_matches_reference(dtype, padding, normalize, rounding, gen):
    x = make_input(dtype, (64, 3, 33, 40), gen)
    w = torch.randn(64, 3, 5, 5, generator=gen) * 0.3 + (normalize == "max")
    out = ops.filter2d(x.cuda(), w.cuda(), padding=padding, normalize=normalize, rounding=rounding)
    assert out.device.type == "cuda"
    assert_matches(out.cpu(), reference(x, w, padding, normalize, rounding))


@requires_cuda
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_cuda_layouts_side_stream_and_opcheck(dtype, cifar):
    x = cifar["x_train"][:512]
    x = x if dtype == torch.uint8 else x.float() / 255
    k = torch.tensor([[0, -0.375, 0], [-0.375, 2.5, -0.375], [0, -0.375, 0]])
    w = k.expand(len(x), 3, 3).contiguous()
    cpu = ops.filter2d(x, w, padding="reflect")
    xc, wc = x.cuda(), w.cuda()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        outs = [ops.filter2d(xc.contiguous(memory_format=torch.channels_last), wc, padding="reflect"),
                ops.filter2d(torch.cat([xc, xc], dim=3)[..., :32], wc, padding="reflect")]
    side.synchronize()
    for out in outs:
        assert (out.cpu().float() - cpu.float()).abs().max() <= (1 if dtype == torch.uint8 else 1e-5)
    torch.library.opcheck(torch.ops.poisonkit.filter2d.default,
                          (xc[:4], wc[:4], "valid", "max", "truncate", True))
