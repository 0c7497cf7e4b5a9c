"""The README's rule for non-finite pixels, op by op: every output value computed from a
NaN or +-inf input value is NaN (clamping never turns one into a number), every other output
is what the image with those pixels set to 0 gives. Same rule on CUDA (parity tests)."""
import math

import pytest
import torch

from poisonkit import ops
from poisonkit.poisons.ar import sample_coefficients
from tests.conftest import requires_cuda

BAD = [math.nan, math.inf, -math.inf]


def poisoned(gen, shape=(3, 3, 12, 12), where=((1, 2, 5, 6),), value=math.nan):
    x = torch.rand(shape, generator=gen)
    for n, c, i, j in where:
        x[n, c, i, j] = value
    return x


def assert_rule(out, clean_out, reach):
    """NaN exactly at `reach`, the clean result elsewhere."""
    assert torch.isnan(out[reach]).all()
    assert not torch.isnan(out[~reach]).any()
    torch.testing.assert_close(out[~reach], clean_out[~reach], atol=0, rtol=0)


def zeroed(x):
    return torch.where(torch.isfinite(x), x, 0.0)


@pytest.mark.parametrize("value", BAD)
@pytest.mark.parametrize("padding", ["zeros", "reflect", "valid"])
@pytest.mark.parametrize("clamp", [True, False])
def test_filter2d_window(gen, value, padding, clamp):
    x = poisoned(gen, value=value)
    w = torch.randn(3, 3, 3, generator=gen)
    w[:, 0, 0] = 0.0  # a zero tap still reads the pixel: 0 * inf is NaN
    out = ops.filter2d(x, w, padding, clamp=clamp)
    reach = torch.zeros_like(out, dtype=torch.bool)
    off = 0 if padding == "valid" else 1
    reach[1, 2, 5 + off - 2:5 + off + 1, 6 + off - 2:6 + off + 1] = True
    assert_rule(out, ops.filter2d(zeroed(x), w, padding, clamp=clamp), reach)


@pytest.mark.parametrize("value", BAD)
def test_filter2d_normalize_max_whole_image(gen, value):
    x = poisoned(gen, value=value)
    w = torch.rand(3, 3, 3, generator=gen)
    out = ops.filter2d(x, w, "zeros", "max", "truncate")
    reach = torch.zeros_like(out, dtype=torch.bool)
    reach[1] = True  # the image max is undefined: the whole image
    assert_rule(out, ops.filter2d(zeroed(x), w, "zeros", "max", "truncate"), reach)


@pytest.mark.parametrize("value", BAD)
@pytest.mark.parametrize("basis,shape", [("dct", "square"), ("fft", "disk")])
@pytest.mark.parametrize("size", [12, 64])  # 64: the CPU's folded products
def test_lowpass_whole_channel(gen, value, basis, shape, size):
    x = poisoned(gen, (2, 3, size, size), ((1, 2, 5, 6),), value)
    out = ops.lowpass(x, 0.5, basis, shape)
    reach = torch.zeros_like(out, dtype=torch.bool)
    reach[1, 2] = True
    assert_rule(out, ops.lowpass(zeroed(x), 0.5, basis, shape), reach)


@pytest.mark.parametrize("value", BAD)
@pytest.mark.parametrize("clamp", [True, False])
def test_project_out_whole_image(gen, value, clamp):
    x = poisoned(gen, (9, 3, 4, 4), ((4, 0, 1, 1),), value)  # inside a block of 8 images
    q = torch.linalg.qr(torch.randn(48, 5, generator=gen, dtype=torch.float64))[0].float()
    out = ops.project_out(x, q, clamp)
    reach = torch.zeros_like(out, dtype=torch.bool)
    reach[4] = True
    assert_rule(out, ops.project_out(zeroed(x), q, clamp), reach)


@pytest.fixture(scope="module")
def coeffs():
    return sample_coefficients(4, seed=0, progress=False).coeffs


@pytest.mark.parametrize("value", BAD)
def test_ar_poison_pixel(gen, coeffs, value):
    x = poisoned(gen, (2, 3, 8, 8), ((1, 0, 3, 3),), value)
    args = (coeffs, torch.tensor([0, 3]), torch.tensor([5, 6]), 7)
    out = ops.ar_poison(x, *args)
    reach = ~torch.isfinite(x)
    assert_rule(out, ops.ar_poison(zeroed(x), *args), reach)


@pytest.mark.parametrize("value", BAD)
def test_ar_filter_window(gen, coeffs, value):
    x = poisoned(gen, (2, 3, 8, 8), ((1, 0, 3, 3),), value)
    out = ops.ar_filter(x, coeffs)
    reach = torch.zeros_like(out, dtype=torch.bool)
    reach[1, :, 1:4, 1:4] = True  # every class's responses whose 3x3 window holds (3, 3)
    assert_rule(out, ops.ar_filter(zeroed(x), coeffs), reach)


@requires_cuda
@pytest.mark.parametrize("value", BAD)
def test_cuda_follows_the_same_rule(gen, coeffs, value):
    # filter2d normalize='max': a whole warp of NaN outputs (a NaN 34x10 patch) and single
    # bad pixels in other images; the CPU's answer is the rule (tested above).
    x = torch.rand(6, 3, 40, 70, generator=gen)
    x[1, 0, 3:13, 2:36] = value
    x[4, 2, 39, 69] = value
    w = torch.rand(6, 3, 3, generator=gen)
    for args in [("zeros", "max", "truncate"), ("reflect", "none", "nearest")]:
        torch.testing.assert_close(ops.filter2d(x.cuda(), w.cuda(), *args).cpu(),
                                   ops.filter2d(x, w, *args), equal_nan=True, atol=1e-6, rtol=0)
    torch.testing.assert_close(ops.lowpass(x.cuda(), 0.3).cpu(), ops.lowpass(x, 0.3),
                               equal_nan=True, atol=1e-5, rtol=0)
    q = torch.linalg.qr(torch.randn(3 * 40 * 70, 4, generator=gen))[0]
    torch.testing.assert_close(ops.project_out(x.cuda(), q.cuda()).cpu(), ops.project_out(x, q),
                               equal_nan=True, atol=1e-5, rtol=0)
    torch.testing.assert_close(ops.ar_filter(x.cuda(), coeffs.cuda()).cpu(),
                               ops.ar_filter(x, coeffs), equal_nan=True, atol=1e-5, rtol=0)
    ids = torch.arange(6)
    torch.testing.assert_close(
        ops.ar_poison(x.cuda(), coeffs.cuda(), (ids % 4).cuda(), ids.cuda(), 3).cpu(),
        ops.ar_poison(x, coeffs, ids % 4, ids, 3), equal_nan=True, atol=1e-5, rtol=0)
