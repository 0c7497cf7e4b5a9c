"""Spectral profile and border statistics per class.

The class-wise blur poison (Sadasivan et al., 2023) filters every image of class k with
its own 3x3 kernel: each class's power spectrum is multiplied by |kernel_k(f)|^2, so the
classes' spectra drift apart, most at high frequencies. Its zero padding also darkens the
one-pixel border by an amount set by the kernel taps that fall outside the image, side by
side and class by class. Natural classes differ a little in both (smooth skies behind
airplanes and ships) but far less.

Spectrum: per image and channel, the power |FFT|^2 of the mean-removed image, divided by
the image's total AC power (so contrast differences between classes do not count, only
the spectrum's shape), averaged over channels, binned by radial frequency, and averaged
per class. Spread: the standard deviation across classes of the per-class log power (dB)
in each radial bin. Border: per class and side, the mean of the outermost row / column
over the mean of the next one.
"""
from __future__ import annotations

import torch

# Levels on natural images: the clean CIFAR-10 10k subset (10 classes), measured here.
# Spread: mean across-class spread of the upper half of the radial bins, in dB (the
# class-wise blur poison: 1.9; an AR poison at L2 eps 1, which adds some class-dependent
# high-frequency power: about 0.9).
NATURAL_SPREAD_DB = 0.72
FLAG_SPREAD_DB = 1.25
# Border: largest |log(border row / next row)| over classes and sides (class-wise blur: 1.27).
NATURAL_BORDER_LOG = 0.072
FLAG_BORDER_LOG = 0.2


def radial_bins(h: int, w: int) -> tuple[torch.Tensor, int]:
    """Integer radial frequency index per rfft2 coefficient (cycles per image, on the
    shorter side's scale) and the number of bins (up to the Nyquist radius)."""
    fy = torch.fft.fftfreq(h) * min(h, w)
    fx = torch.fft.rfftfreq(w) * min(h, w)
    r = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2).round().long()
    nbins = min(h, w) // 2 + 1
    return r.clamp_max(nbins - 1), nbins


def class_spectra(x: torch.Tensor, y: torch.Tensor, num_classes: int, chunk: int = 1024,
                  progress=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean normalised radial power spectrum per class [K, bins] float64, bin radii).
    Bin 0 (DC) is zero by construction and dropped by the caller's statistics."""
    h, w = x.shape[-2:]
    bins, nbins = radial_bins(h, w)
    flat_bins = bins.flatten()
    # rfft2 stores half the spectrum: the columns other than 0 (and Nyquist for even
    # widths) stand for two coefficients each, in the power sums and in the bin counts.
    weight = torch.full((w // 2 + 1,), 2.0)
    weight[0] = 1.0
    if w % 2 == 0:
        weight[-1] = 1.0
    counts = torch.zeros(nbins, dtype=torch.float64).index_add_(
        0, flat_bins, weight.expand(h, -1).flatten().double())
    sums = torch.zeros(num_classes, nbins, dtype=torch.float64)
    for start in range(0, len(x), chunk):
        xs = x[start:start + chunk].float()
        xs = xs - xs.mean((-2, -1), keepdim=True)
        power = (torch.fft.rfft2(xs).abs().square() * weight).mean(1)  # [n, h, w//2+1]
        total = power.flatten(1).sum(1).clamp_min(1e-12)
        per_bin = torch.zeros(len(xs), nbins).index_add_(1, flat_bins, power.flatten(1))
        sums.index_add_(0, y[start:start + chunk], (per_bin / total[:, None]).double())
        if progress is not None:
            progress(len(xs))
    sizes = torch.bincount(y, minlength=num_classes).double().clamp_min(1)
    return sums / sizes[:, None] / counts, torch.arange(nbins)


def spectral_spread(spectra: torch.Tensor) -> dict:
    """Across-class standard deviation of 10 log10(power) per radial bin (DC excluded), and
    its mean over the upper half of the bins, where a blur acts."""
    db = 10 * torch.log10(spectra[:, 1:].clamp_min(1e-20))
    spread = db.std(0, unbiased=False)
    high = spread[len(spread) // 2:]
    return {"spectra_db": db.tolist(), "spread_db": spread.tolist(),
            "max_spread_db": float(spread.max()), "high_spread_db": float(high.mean())}


BORDER_SIDES = ("top", "bottom", "left", "right")


def border_profile(x: torch.Tensor, y: torch.Tensor, num_classes: int) -> dict:
    """Per class: mean border intensity (0-255 scale, all four sides) and, per side, the
    ratio of the outermost row / column's mean to the next one's."""
    unit = 255.0 if x.dtype == torch.uint8 else 1.0
    xs = x.float() * (255.0 / unit)
    outer = torch.stack([xs[..., 0, :].mean((-2, -1)), xs[..., -1, :].mean((-2, -1)),
                         xs[..., :, 0].mean((-2, -1)), xs[..., :, -1].mean((-2, -1))], 1)
    inner = torch.stack([xs[..., 1, :].mean((-2, -1)), xs[..., -2, :].mean((-2, -1)),
                         xs[..., :, 1].mean((-2, -1)), xs[..., :, -2].mean((-2, -1))], 1)
    sizes = torch.bincount(y, minlength=num_classes).double().clamp_min(1)[:, None]
    per_class = lambda v: torch.zeros(num_classes, 4, dtype=torch.float64).index_add_(0, y, v.double()) / sizes
    outer_k, inner_k = per_class(outer), per_class(inner)
    ratio = outer_k / inner_k.clamp_min(1e-6)
    log_ratio = ratio.clamp_min(1e-6).log().abs()
    return {"mean_border": outer_k.mean(1).tolist(), "ratio": ratio.tolist(),
            "max_abs_log_ratio": float(log_ratio.max()),
            "spread_log_ratio": float(ratio.log().std(0, unbiased=False).max())}
