"""The inspection's signals on small data, against references written from the
definitions with NumPy / SciPy (not by calling the module's helpers)."""
import math

import numpy as np
import pytest
import torch
from scipy.signal import correlate2d

from poisonkit.inspect import autoregressive, separability, spectral

D2 = np.outer([1.0, -2.0, 1.0], [1.0, -2.0, 1.0]) / 4


def ar_canvases(taps, n, size, gen, crop=4):
    """n canvases per class of a per-channel causal 3x3 recurrence (taps [K, C, 3, 3],
    tap (2, 2) ignored), raster order, crop rows/cols dropped; float64 [K*n, C, size, size]."""
    K, C = taps.shape[:2]
    x = torch.randn(K, n, C, size + crop, size + crop, generator=gen, dtype=torch.float64)
    b = taps.clone().double()
    b[..., 2, 2] = 0
    for i in range(size + crop - 2):
        for j in range(size + crop - 2):
            x[..., i + 2, j + 2] = (x[..., i:i + 3, j:j + 3] * b[:, None]).sum((-2, -1))
    return x[..., crop:, crop:].reshape(K * n, C, size, size), torch.arange(K).repeat_interleave(n)


def test_class_grams_match_a_windowed_numpy_reference(gen):
    x = torch.rand(6, 2, 9, 11, generator=gen)
    y = torch.tensor([0, 1, 1, 0, 2, 1])
    grams = autoregressive.class_grams(x, y, 3, chunk=4)
    ref = np.zeros((3, 2, 9, 9))
    for img, k in zip(x.double().numpy(), y.tolist()):
        for c in range(2):
            r = correlate2d(img[c], D2, mode="valid")
            for i in range(r.shape[0] - 2):
                for j in range(r.shape[1] - 2):
                    z = r[i:i + 3, j:j + 3].reshape(-1)
                    ref[k, c] += np.outer(z, z) / (z @ z + autoregressive.WINDOW_TAU)
    np.testing.assert_allclose(grams.numpy(), ref, rtol=1e-4, atol=1e-9)


def test_own_filter_matches_weighted_lstsq_and_the_shared_filter_pools_classes(gen):
    x = torch.rand(40, 3, 16, 16, generator=gen)
    y = torch.arange(2).repeat(20)
    grams = autoregressive.class_grams(x, y, 2)
    stats = autoregressive.ar_predictability(grams)
    windows = [[], []]
    for img, k in zip(x.double().numpy(), y.tolist()):
        r = correlate2d(img[0], D2, mode="valid")
        for i in range(r.shape[0] - 2):
            for j in range(r.shape[1] - 2):
                windows[k].append(r[i:i + 3, j:j + 3].reshape(-1))
    for k in range(2):
        z = np.array(windows[k])
        sw = 1 / np.sqrt((z ** 2).sum(1) + autoregressive.WINDOW_TAU)
        taps, *_ = np.linalg.lstsq(z[:, :8] * sw[:, None], z[:, 8] * sw, rcond=None)
        np.testing.assert_allclose(stats["taps_own"][k][0], taps, rtol=1e-3, atol=1e-4)
    # Identically distributed classes: the shared filter is as good as the own filters.
    assert 0 <= stats["max_gain"] < 0.05


def test_recovers_each_class_recurrence_and_flags_it(gen):
    taps = 0.1 * torch.randn(3, 3, 3, 3, generator=gen)  # a stable recurrence: identifiable
    x, y = ar_canvases(taps, n=4, size=16, gen=gen)
    x = (x / x.flatten(1).abs().amax(1)[:, None, None, None]).float()  # scale is irrelevant
    grams = autoregressive.class_grams(x, y, 3)
    stats = autoregressive.ar_predictability(grams)
    own = torch.tensor(stats["taps_own"]).reshape(3, 3, 8)
    expected = taps.reshape(3, 3, 9)[..., :8]
    torch.testing.assert_close(own, expected, atol=5e-3, rtol=0)  # float32 residual
    true_error = autoregressive.residual_energy(grams, expected.double())
    assert (true_error / grams[..., 8, 8]).max() < 1e-6   # the high-pass keeps the relation
    assert min(stats["explained_own"]) > 0.999
    assert stats["median_gain"] > autoregressive.FLAG_MEDIAN_GAIN


def test_ar_perturbation_on_natural_like_images_raises_the_gain(gen):
    smooth = torch.nn.functional.avg_pool2d(torch.rand(120, 3, 20, 20, generator=gen), 3, 1, 1)
    y = torch.arange(3).repeat_interleave(40)
    taps = 0.3 * torch.randn(3, 3, 3, 3, generator=gen)
    delta, _ = ar_canvases(taps, n=40, size=20, gen=gen)
    delta = delta / delta.flatten(1).norm(dim=1)[:, None, None, None]  # L2 eps 1, as the poison
    poisoned = (smooth + delta.float()).clamp(0, 1)
    clean = autoregressive.ar_predictability(autoregressive.class_grams(smooth, y, 3))
    ar = autoregressive.ar_predictability(autoregressive.class_grams(poisoned, y, 3))
    assert clean["median_gain"] < autoregressive.FLAG_MEDIAN_GAIN
    assert ar["median_gain"] > 3 * clean["median_gain"] + autoregressive.FLAG_MEDIAN_GAIN


def full_fft_radial(x, y, K):
    """Mean normalised radial power per class from the full 2-D FFT (NumPy)."""
    n, C, h, w = x.shape
    s = min(h, w)
    fy, fx = np.meshgrid(np.fft.fftfreq(h) * s, np.fft.fftfreq(w) * s, indexing="ij")
    r = np.minimum(np.rint(np.hypot(fy, fx)).astype(int), s // 2)
    out = np.zeros((K, s // 2 + 1))
    for img, k in zip(x.double().numpy(), y.tolist()):
        img = img - img.mean((-2, -1), keepdims=True)
        p = (np.abs(np.fft.fft2(img)) ** 2).mean(0)
        p /= p.sum()
        out[k] += np.bincount(r.ravel(), p.ravel(), s // 2 + 1) / np.bincount(r.ravel(), None, s // 2 + 1)
    return out / np.bincount(y.numpy(), minlength=K)[:, None]


@pytest.mark.parametrize("h, w", [(12, 12), (9, 14)])
def test_class_spectra_match_the_full_fft_reference(gen, h, w):
    x = (torch.rand(7, 3, h, w, generator=gen) * 255).to(torch.uint8)
    y = torch.tensor([0, 1, 0, 1, 1, 0, 1])
    spectra, radii = spectral.class_spectra(x, y, 2, chunk=3)
    np.testing.assert_allclose(spectra.numpy(), full_fft_radial(x, y, 2), rtol=1e-4, atol=1e-9)
    assert radii.tolist() == list(range(min(h, w) // 2 + 1))


def test_spectral_spread_flags_a_classwise_blur_only(gen):
    x = torch.rand(60, 3, 16, 16, generator=gen)
    y = torch.arange(3).repeat(20)
    same = spectral.spectral_spread(spectral.class_spectra(x, y, 3)[0])
    blurred = x.clone()
    blurred[y == 1] = torch.nn.functional.avg_pool2d(x[y == 1], 3, 1, 1)
    diff = spectral.spectral_spread(spectral.class_spectra(blurred, y, 3)[0])
    assert same["high_spread_db"] < 0.5 < spectral.FLAG_SPREAD_DB < diff["high_spread_db"]
    db = np.array(diff["spectra_db"])
    np.testing.assert_allclose(diff["spread_db"], db.std(0), rtol=1e-6)


def test_border_profile_per_class_and_side():
    x = torch.full((4, 3, 8, 8), 100, dtype=torch.uint8)
    y = torch.tensor([0, 0, 1, 1])
    x[y == 1, :, 0, :] = 50          # class 1: top border row at half intensity
    stats = spectral.border_profile(x, y, 2)
    np.testing.assert_allclose(stats["ratio"][0], [1, 1, 1, 1])
    np.testing.assert_allclose(stats["ratio"][1], [0.5, 1, 1, 1], rtol=1e-6)
    # Mean of the four sides' outer rows: top 50, the left/right columns hold one 50 each.
    np.testing.assert_allclose(stats["mean_border"], [100, (50 + 100 + 2 * (50 + 7 * 100) / 8) / 4])
    assert stats["max_abs_log_ratio"] == pytest.approx(math.log(2))


def test_linear_separability_of_a_classwise_pattern_vs_noise(gen):
    x = torch.rand(400, 3, 8, 8, generator=gen)
    y = torch.arange(4).repeat(100)
    noise = separability.linear_separability(x, y, 4)
    patterns = 0.1 * torch.randn(4, 3, 8, 8, generator=gen)
    shortcut = separability.linear_separability((x + patterns[y]).clamp(0, 1), y, 4)
    assert noise["epochs"] == separability.EPOCHS * 25     # stretched: 400 images
    assert abs(noise["score"]) < 0.1   # memorises as much with shuffled labels
    assert shortcut["train_accuracy"] > 0.95 and shortcut["score"] > 0.9
    assert shortcut["score"] == pytest.approx((shortcut["train_accuracy"] - shortcut["shuffled_accuracy"])
                                              / (1 - shortcut["shuffled_accuracy"]))


def test_natural_reference_picks_the_nearest_measured_size():
    assert separability.natural_score(32, 32) == (separability.NATURAL_SCORE[32], 32)
    assert separability.natural_score(224, 224)[1] == max(separability.NATURAL_SCORE)
    assert separability.natural_score(30, 40)[1] == 32
