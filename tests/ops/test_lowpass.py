"""poisonkit::lowpass against independent references: scipy.fft dctn/idctn (norm='ortho')
for the DCT masks and numpy.fft for the FFT masks, computed in float64 from the masks'
definitions (not from poisonkit's basis rows)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.fft as sfft
import torch

from poisonkit import ops
from poisonkit.defenses.lowpass import lowpass_factors
from tests.conftest import requires_cuda

SIZES = [30, 32, 64, 96, 224]
KEEPS = [0.1, 0.3, 0.55, 1.0]
MODES = [("dct", "square"), ("dct", "disk"), ("fft", "square"), ("fft", "disk")]


def reference_mask(h: int, w: int, keep: float, basis: str, shape: str) -> np.ndarray:
    """0/1 mask over the full coefficient array: DCT [h, w] or DFT (numpy order) [h, w]."""
    if basis == "dct":
        rh, rw = int(h * keep + 1e-9), int(w * keep + 1e-9)
        k1, k2 = np.arange(h)[:, None], np.arange(w)[None, :]
        if shape == "square":
            return (k1 < rh) & (k2 < rw)
        return (k1 * rw) ** 2 + (k2 * rh) ** 2 < (rh * rw) ** 2  # (k1/rh)^2 + (k2/rw)^2 < 1
    fy = np.abs(np.fft.fftfreq(h))[:, None] * 2  # in units of Nyquist
    fx = np.abs(np.fft.fftfreq(w))[None, :] * 2
    if shape == "square":
        return (fy <= keep + 1e-9) & (fx <= keep + 1e-9)
    return fy ** 2 + fx ** 2 <= keep ** 2 + 1e-9


def reference(x: np.ndarray, keep: float, basis: str, shape: str, clamp: bool = True):
    """x float64 in [0, 1], [..., H, W]."""
    h, w = x.shape[-2:]
    mask = reference_mask(h, w, keep, basis, shape)
    if basis == "dct":
        out = sfft.idctn(sfft.dctn(x, axes=(-2, -1), norm="ortho") * mask, axes=(-2, -1),
                         norm="ortho")
    else:
        spectrum = np.fft.fft2(x) * mask
        out = np.fft.ifft2(spectrum)
        assert np.abs(out.imag).max() < 1e-9  # the masks are symmetric: the result is real
        out = out.real
    return np.clip(out, 0, 1) if clamp else out


def to_u8(z: np.ndarray) -> np.ndarray:
    return np.floor(np.clip(z, 0, 1) * 255 + 0.5).astype(np.uint8)


def random_images(shape, dtype, gen) -> torch.Tensor:
    """uint8 in [0, 255] or float32 in [0, 1]."""
    x = torch.randint(0, 256, shape, dtype=torch.uint8, generator=gen)
    return x if dtype == torch.uint8 else x.float() / 255


def assert_u8_close(out: torch.Tensor, ref_unit: np.ndarray):
    """uint8 results may differ from the float64 reference by one level where the value
    sits on a rounding boundary (float32 arithmetic); such pixels must be rare."""
    diff = np.abs(out.numpy().astype(np.int16) - to_u8(ref_unit).astype(np.int16))
    assert diff.max() <= 1
    assert (diff > 0).mean() < 2e-3


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("keep", KEEPS)
@pytest.mark.parametrize("basis,shape", MODES)
def test_float_matches_reference(size, keep, basis, shape, gen):
    x = torch.rand(2, 3, size, size, generator=gen)
    out = ops.lowpass(x, keep, basis, shape)
    assert out.dtype == torch.float32 and out.shape == x.shape
    ref = reference(x.double().numpy(), keep, basis, shape)
    np.testing.assert_allclose(out.numpy(), ref, atol=2e-6, rtol=0)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("basis,shape", MODES)
def test_uint8_matches_reference(size, basis, shape, gen):
    x = torch.randint(0, 256, (2, 3, size, size), dtype=torch.uint8, generator=gen)
    out = ops.lowpass(x, 0.3, basis, shape)
    assert out.dtype == torch.uint8
    assert_u8_close(out, reference(x.double().numpy() / 255, 0.3, basis, shape))


@pytest.mark.parametrize("h,w", [(30, 45), (17, 32), (2, 9), (224, 30), (49, 30), (30, 49),
                                 (50, 97), (97, 64)])
@pytest.mark.parametrize("basis,shape", MODES)
def test_rectangular_and_odd_sizes(h, w, basis, shape, gen):
    keep = 0.6 if basis == "dct" else 0.3  # int(2 * 0.3) = 0 keeps nothing on a 2-row axis
    x = torch.rand(1, 2, h, w, generator=gen)
    ref = reference(x.double().numpy(), keep, basis, shape)
    np.testing.assert_allclose(ops.lowpass(x, keep, basis, shape).numpy(), ref, atol=2e-6, rtol=0)


def test_real_cifar_images_match_scipy(cifar):
    x = cifar["x_train"][::1000]  # one image per class
    ref = reference(x.double().numpy() / 255, 0.3, "dct", "square")
    assert_u8_close(ops.lowpass(x), ref)
    # The reference's own pipeline: ToTensor, then FF in float.
    np.testing.assert_allclose(ops.lowpass(x.float() / 255).numpy(), ref, atol=2e-6, rtol=0)


@pytest.mark.parametrize("basis,shape", MODES)
def test_unclamped_output_and_clamp(basis, shape):
    x = torch.zeros(2, 3, 32, 32)
    x[..., 16:] = 1.0  # a step edge: the truncated spectrum rings past 0 and 1 (Gibbs)
    raw = ops.lowpass(x, 0.3, basis, shape, clamp=False)
    np.testing.assert_allclose(raw.numpy(), reference(x.double().numpy(), 0.3, basis, shape,
                                                      clamp=False), atol=2e-6, rtol=0)
    assert raw.min() < 0 and raw.max() > 1
    torch.testing.assert_close(ops.lowpass(x, 0.3, basis, shape), raw.clamp(0, 1))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_chw_equals_nchw(dtype, gen):
    x = random_images((3, 30, 30), dtype, gen)
    out = ops.lowpass(x, 0.3, "fft", "disk")
    assert out.shape == x.shape
    torch.testing.assert_close(out, ops.lowpass(x[None], 0.3, "fft", "disk")[0], rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_non_contiguous_inputs(dtype, gen):
    base = random_images((4, 3, 32, 64), dtype, gen)
    for x in (base[:, :, :, ::2], base.transpose(2, 3)[:, :, :32],
              base[:, :, :, :32].contiguous(memory_format=torch.channels_last)):
        assert not x.is_contiguous()
        torch.testing.assert_close(ops.lowpass(x), ops.lowpass(x.contiguous()), rtol=0, atol=0)


def kept_only_image(size: int, keep: float, basis: str, shape: str, rng) -> np.ndarray:
    """A float64 image in [0.1, 0.9] made only of frequencies the mask keeps."""
    mask = reference_mask(size, size, keep, basis, shape)
    coeffs = rng.standard_normal((3, size, size)) * mask
    if basis == "dct":
        img = sfft.idctn(coeffs, axes=(-2, -1), norm="ortho")
    else:
        img = np.fft.ifft2(coeffs + 1j * rng.standard_normal((3, size, size)) * mask).real
    lo, hi = img.min(), img.max()
    return 0.1 + 0.8 * (img - lo) / (hi - lo)  # the affine map only changes the kept DC term


@pytest.mark.parametrize("size", [30, 32, 96])
@pytest.mark.parametrize("basis,shape", MODES)
def test_kept_frequencies_pass_unchanged(size, basis, shape):
    img = kept_only_image(size, 0.3, basis, shape, np.random.default_rng(size))
    x = torch.from_numpy(img).float()
    torch.testing.assert_close(ops.lowpass(x, 0.3, basis, shape), x, rtol=0, atol=2e-6)


@pytest.mark.parametrize("basis,shape", MODES)
def test_idempotent(basis, shape, gen):
    x = torch.rand(2, 3, 30, 30, generator=gen)
    once = ops.lowpass(x, 0.3, basis, shape, clamp=False)
    torch.testing.assert_close(ops.lowpass(once, 0.3, basis, shape, clamp=False), once, rtol=0,
                               atol=2e-6)
    u8 = ops.lowpass((x * 255).to(torch.uint8), 0.3, basis, shape)
    again = ops.lowpass(u8, 0.3, basis, shape)  # re-rounding moves a pixel by a level at most
    assert (again.int() - u8.int()).abs().max() <= 1


def test_keep_one_is_identity(gen):
    x = torch.randint(0, 256, (2, 3, 30, 31), dtype=torch.uint8, generator=gen)
    for basis in ("dct", "fft"):
        torch.testing.assert_close(ops.lowpass(x, 1.0, basis, "square"), x, rtol=0, atol=0)


def test_nan_pixels_stay_visible():
    x = torch.full((1, 2, 8, 8), 0.5)
    x[0, 0, 3, 3] = math.nan
    out = ops.lowpass(x, 0.5)
    assert out[0, 0].isnan().all() and not out[0, 1].isnan().any()


@pytest.mark.parametrize("keep", [0.0, -0.1, 1.5, math.nan, math.inf, True, "0.3", None])
def test_bad_keep_refused(keep):
    with pytest.raises(ValueError, match="keep"):
        ops.lowpass(torch.zeros(1, 3, 32, 32), keep)


def test_keep_too_small_for_the_size_refused():
    with pytest.raises(ValueError, match="keep, x: keep=0.03 keeps no DCT coefficient"):
        ops.lowpass(torch.zeros(1, 3, 30, 30), 0.03)


@pytest.mark.parametrize("basis,shape,name", [("dst", "square", "basis"), ("fft", "circle", "shape"),
                                              ("DCT", "square", "basis")])
def test_unknown_options_refused(basis, shape, name):
    with pytest.raises(ValueError, match=name):
        ops.lowpass(torch.zeros(1, 3, 32, 32), 0.3, basis, shape)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.int32, torch.bool])
def test_wrong_dtype_refused(dtype):
    with pytest.raises(RuntimeError, match="x must be uint8 or float32"):
        ops.lowpass(torch.zeros(1, 3, 32, 32, dtype=dtype))


@pytest.mark.parametrize("shape,match", [((32, 32), "CHW or NCHW"), ((1, 1, 3, 32, 32), "CHW or NCHW"),
                                         ((0, 3, 32, 32), "empty batch"),
                                         ((1, 0, 32, 32), "at least one channel")])
def test_wrong_shape_refused(shape, match):
    with pytest.raises((ValueError, RuntimeError), match=match):
        ops.lowpass(torch.zeros(shape))


def test_op_refuses_bad_basis_tensors():
    x = torch.zeros(1, 3, 32, 32)
    rows, cols, _ = lowpass_factors(32, 32, 0.3)
    op = torch.ops.poisonkit.lowpass.default
    with pytest.raises(RuntimeError, match="rows must be float32"):
        op(x, rows.double(), cols, None, True)
    with pytest.raises(RuntimeError, match=r"rows must be the kept basis rows along H, \[r, 32\]"):
        op(x, rows[:, :30], cols, None, True)
    with pytest.raises(RuntimeError, match="cols must be"):
        op(x, rows, torch.zeros(33, 32), None, True)
    with pytest.raises(RuntimeError, match="rows contains NaN or inf"):
        op(x, torch.full_like(rows, math.nan), cols, None, True)
    with pytest.raises(RuntimeError, match=r"mask must be a coefficient mask \[9, 9\]"):
        op(x, rows, cols, torch.ones(rows.shape[0], cols.shape[0] + 1), True)
    with pytest.raises(RuntimeError, match=r"mask must be a coefficient mask \[9, 9\]"):
        op(x, rows, cols, torch.ones(rows.shape[0] - 1, cols.shape[0]), True)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
@pytest.mark.parametrize("h,w", [(30, 20), (64, 56)])
def test_op_with_any_orthonormal_rows(dtype, h, w, gen):
    """The op itself is generic: out = R^T (M o (R X C^T)) C for any rows, not only the
    DCT / Fourier ones (whose mirror symmetry the CPU driver exploits; 64x56 is above the
    size where it folds, so this also covers rows with no symmetry there)."""
    x = random_images((2, 3, h, w), dtype, gen)
    rows = torch.linalg.qr(torch.randn(h, h, generator=gen, dtype=torch.float64))[0][:, :7].T
    cols = torch.linalg.qr(torch.randn(w, w, generator=gen, dtype=torch.float64))[0][:, :5].T
    mask = (torch.rand(7, 5, generator=gen) > 0.3).double()
    unit = x.double() / 255 if dtype == torch.uint8 else x.double()
    ref = (rows.T @ (mask * (rows @ unit @ cols.T)) @ cols).clamp(0, 1).numpy()
    out = torch.ops.poisonkit.lowpass.default(x, rows.float(), cols.float(), mask.float(), True)
    if dtype == torch.uint8:
        assert_u8_close(out, ref)
    else:
        np.testing.assert_allclose(out.numpy(), ref, atol=2e-6, rtol=0)


def test_not_a_tensor_refused():
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        ops.lowpass(np.zeros((3, 32, 32), np.float32))


@requires_cuda
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
@pytest.mark.parametrize("basis,shape", MODES)
def test_cuda_matches_cpu(dtype, basis, shape, gen):
    x = random_images((3, 3, 30, 224), dtype, gen)
    out = ops.lowpass(x.cuda(), 0.3, basis, shape).cpu()
    cpu = ops.lowpass(x, 0.3, basis, shape)
    torch.testing.assert_close(out.float(), cpu.float(), rtol=0, atol=1 if dtype == torch.uint8
                               else 2e-6)
