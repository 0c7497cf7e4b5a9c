"""Basis construction of the low-pass (poisonkit.defenses.lowpass) and the LowPass / RSKFF
transforms."""
from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import scipy.fft as sfft
import torch
from torchvision import tv_tensors

from poisonkit import ops
from poisonkit.defenses.lowpass import (axis_basis, check_options, dct_rank, disk_mask,
                                        fft_radius, lowpass_factors, projector)
from poisonkit.transforms import RSKFF, LowPass, RandomSharpen

SIZES = [1, 2, 7, 30, 32, 224]


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("basis", ["dct", "fft"])
@pytest.mark.parametrize("keep", [0.3, 0.5, 1.0])
def test_rows_are_orthonormal(n, basis, keep):
    if basis == "dct" and dct_rank(n, keep) == 0:
        return
    rows, freqs = axis_basis(n, keep, basis)
    assert rows.shape == (len(freqs), n)
    np.testing.assert_allclose(rows @ rows.T, np.eye(len(rows)), atol=1e-12)


@pytest.mark.parametrize("n", [7, 30, 32])
def test_dct_rows_are_scipys_orthonormal_dct(n):
    rows, freqs = axis_basis(n, 0.5, "dct")
    dct_matrix = sfft.dct(np.eye(n), norm="ortho", axis=0)  # column i: DCT of e_i
    np.testing.assert_allclose(rows, dct_matrix[:dct_rank(n, 0.5)], atol=1e-12)
    np.testing.assert_array_equal(freqs, np.arange(len(rows)))


@pytest.mark.parametrize("n", [7, 30, 32])
@pytest.mark.parametrize("keep", [0.1, 0.3, 1.0])
def test_fft_projector_is_numpys_masked_dft(n, keep):
    mask = np.abs(np.fft.fftfreq(n)) * 2 <= keep + 1e-9
    dft = np.fft.fft(np.eye(n), axis=0)  # column i: DFT of e_i
    expected = (np.fft.ifft(mask[:, None] * dft, axis=0)).real
    np.testing.assert_allclose(projector(n, keep, "fft"), expected, atol=1e-12)
    assert len(axis_basis(n, keep, "fft")[0]) == mask.sum() == min(n, 2 * fft_radius(n, keep) + 1)


@pytest.mark.parametrize("basis", ["dct", "fft"])
def test_projector_properties(basis):
    p = projector(30, 0.3, basis)
    np.testing.assert_allclose(p, p.T, atol=1e-12)
    np.testing.assert_allclose(p @ p, p, atol=1e-12)
    assert round(np.trace(p)) == 9  # int(30 * 0.3) DCT rows; |k| <= 4 DFT frequencies
    np.testing.assert_allclose(projector(31, 1.0, basis), np.eye(31), atol=1e-12)


def test_dct_rank_follows_the_reference_percentages():
    # The reference: r = int(H * p / 100) with an integer percentage p.
    for p in range(1, 101):
        for n in range(1, 400):
            assert dct_rank(n, p / 100) == n * p // 100, (n, p)


def test_disk_masks():
    for basis in ("dct", "fft"):
        m = disk_mask(32, 30, 0.3, basis)
        rows, cols, mask = lowpass_factors(32, 30, 0.3, basis, "disk")
        assert m.shape == (rows.shape[0], cols.shape[0])
        np.testing.assert_array_equal(mask.numpy(), m)
        assert 0 < m.sum() < m.numel() and m[0, 0] == 1
    # DCT: the quarter ellipse inscribed in the 9 x 9 block, k1^2 + k2^2 < 81.
    k = np.arange(9)
    np.testing.assert_array_equal(disk_mask(30, 30, 0.3, "dct"),
                                  k[:, None] ** 2 + k[None, :] ** 2 < 81)


def test_factors_are_cached():
    a = lowpass_factors(32, 32, 0.3, "fft", "disk")
    b = lowpass_factors(32, 32, 0.3, "fft", "disk", "cpu")
    assert all(x is y for x, y in zip(a, b))
    assert lowpass_factors(32, 32, 0.3)[2] is None  # square: no mask
    assert lowpass_factors(32, 32, 0.3)[0].dtype == torch.float32


def test_check_options():
    assert check_options(1, "dct", "square") == 1.0
    for keep in (0, 1.01, float("nan"), False):
        with pytest.raises(ValueError, match="keep"):
            check_options(keep, "dct", "square")
    with pytest.raises(ValueError, match="basis"):
        check_options(0.3, "wavelet", "square")
    with pytest.raises(ValueError, match="shape"):
        check_options(0.3, "dct", "ring")


def test_lowpass_transform_types(gen):
    t = LowPass(0.3, "fft", "disk")
    x = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=gen)
    expected = ops.lowpass(x, 0.3, "fft", "disk")
    torch.testing.assert_close(t(x), expected, rtol=0, atol=0)
    wrapped = t(tv_tensors.Image(x))
    assert isinstance(wrapped, tv_tensors.Image)
    torch.testing.assert_close(wrapped.as_subclass(torch.Tensor), expected, rtol=0, atol=0)
    pil = t(PIL.Image.fromarray(x.permute(1, 2, 0).numpy()))
    np.testing.assert_array_equal(np.asarray(pil), expected.permute(1, 2, 0).numpy())
    with pytest.raises(ValueError, match="shape"):
        LowPass(shape="triangle")


def test_rskff_is_random_sharpen_then_lowpass_in_float(gen):
    x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, generator=gen)
    out = RSKFF(seed=7)(x)
    assert out.shape == (4, 3, 30, 30) and out.dtype == torch.uint8  # 'valid' sharpening
    unit = RandomSharpen(seed=7)(x.float() / 255)  # same draws, float as after ToTensor
    expected = ops.lowpass(unit, 0.3, "dct", "square")
    assert (out.float() - expected * 255).abs().max() <= 0.5 + 1e-4  # rounded once, at the end
    torch.testing.assert_close(RSKFF(seed=7)(x.float() / 255), expected, rtol=0, atol=0)


def test_rskff_restore_size_reflect_pads(gen):
    x = torch.rand(2, 3, 32, 32, generator=gen)
    plain = RSKFF(seed=3)(x)
    restored = RSKFF(seed=3, restore_size=True)(x)
    assert restored.shape == x.shape
    torch.testing.assert_close(restored[..., 1:31, 1:31], plain, rtol=0, atol=0)
    torch.testing.assert_close(restored[..., 0, 1:31], plain[..., 1, :], rtol=0, atol=0)
    same = RSKFF(seed=3, padding="reflect", restore_size=True)(x[0])
    assert same.shape == x[0].shape


def test_rskff_bad_options():
    with pytest.raises(ValueError, match="keep"):
        RSKFF(keep=0)
    with pytest.raises(ValueError, match="padding"):
        RSKFF(padding="circular")
