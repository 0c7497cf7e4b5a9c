"""Dataset inspection: look for class-wise shortcuts (availability poisons) before
training on a dataset, and say which defense fits.

Five signals, each with a verdict against the level natural images reach (measured on the
clean CIFAR-10 10k subset; the numbers live beside each signal):

- linear separability (separability.py): a class-wise poison is a linear shortcut;
- AR predictability (autoregressive.py): an AR poison is predicted per class by a causal
  3x3 filter on the high-pass residual;
- spectral profile and border (spectral.py): a class-wise blur reshapes each class's
  spectrum and darkens its border in a class-dependent way;
- pixel constancy (pixel_constancy.py): the one-pixel shortcut fixes one pixel per class.
  (LSP, the synthetic patch noise, is a linear shortcut: linear separability flags it.)

    report = inspect_dataset(images, labels)          # or inspect_path("data.npz")
    write_report(report, "out/inspect")               # report.json, report.md, PNGs
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import autoregressive, pixel_constancy, separability, spectral
from .report import write_report

SCHEMA = "poisonkit.inspect/1"
MIN_SIDE = 5  # the AR fit needs a 3x3 window inside the 'valid' high-pass residual

DEFENSES = {
    "linear_separability": [
        "projection: orthogonal projection (`poisonkit fit-projection`), which removes the "
        "span of the linear model's weights, i.e. the shortcut this signal measures"],
    "ar_predictability": [
        "grayscale and jpeg:10: they destroy the per-channel fine texture the AR process "
        "lives in", "pgd: adversarial training (slow)",
        "projection helps little: an AR poison is not linearly separable"],
    "spectral_profile": [
        "rsk+ff: random sharpening then DCT low-pass, which undoes a blur and drops the "
        "high frequencies where the classes differ"],
    "border": [
        "rsk / rsk+ff with 'valid' sharpening (the default), which crops the one-pixel "
        "border a zero-padded class-wise blur darkens"],
    "pixel_constancy": [
        "projection: orthogonal projection removes the linear direction of the fixed pixel "
        "(OPS 15.3% -> 87.9% in the projection paper)",
        "augmentation that moves pixels (random crop, which the training harness applies) "
        "or inpainting the flagged pixel"],
}


def load_images(path: str | os.PathLike) -> tuple[torch.Tensor, torch.Tensor, list[str], str]:
    """(images uint8 NCHW, labels int64, class names, source) from an .npz with x_train /
    y_train (as poisonkit writes them) or a folder: class folders, or train/ holding them."""
    from ..data import load_dataset, load_image_folder
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data: {path} does not exist; expected an .npz file or a "
                                "folder of class folders")
    if path.is_dir():
        root = path / "train" if (path / "train").is_dir() else path
        x, y, names = load_image_folder(root)
        return x, y, names, f"ImageFolder {root}"
    data = load_dataset(path)
    try:
        with np.load(path) as f:
            names = [str(n) for n in f["class_names"]] if "class_names" in f else []
    except Exception:  # load_dataset read it already; class names are optional
        names = []
    return data.x_train, data.y_train, names, data.source


def _check(x: torch.Tensor, y: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.dtype not in (torch.uint8, torch.float32) or x.dim() != 4:
        raise ValueError(f"images: expected uint8 [0, 255] or float32 [0, 1] NCHW, got "
                         f"{getattr(x, 'dtype', type(x).__name__)} {tuple(getattr(x, 'shape', ()))}")
    if min(x.shape[-2:]) < MIN_SIDE:
        raise ValueError(f"images: expected at least {MIN_SIDE}x{MIN_SIDE} pixels, got "
                         f"{tuple(x.shape[-2:])}")
    if x.dtype == torch.float32 and not torch.isfinite(x).all():
        raise ValueError("images: contain NaN or inf")
    if not isinstance(y, torch.Tensor) or y.dtype.is_floating_point or y.dtype == torch.bool \
            or tuple(y.shape) != (len(x),):
        raise ValueError(f"labels: expected integers of shape ({len(x)},), got "
                         f"{getattr(y, 'dtype', type(y).__name__)} {tuple(getattr(y, 'shape', ()))}")
    if len(y) and y.min() < 0:
        raise ValueError(f"labels: expected non-negative class indices, got {int(y.min())}")


# What each signal's verdict compares, and what a flag means.
STATISTICS = {
    "linear_separability": "score = (acc - acc_shuffled) / (1 - acc_shuffled)",
    "ar_predictability": "median over classes of the share of the shared filter's error removed "
                         "by the class's own filter",
    "spectral_profile": "mean across-class spread (dB) of the upper half of the radial spectrum",
    "border": "largest |log(border row mean / next row mean)| over classes and sides",
    "pixel_constancy": "median over classes of the smallest within-class pixel std (0-255)",
}
MEANINGS = {
    "linear_separability": "a linear model separates the classes far better than natural "
                           "images allow: a class-wise (linearly separable) shortcut",
    "ar_predictability": "each class's fine texture follows its own causal linear recurrence: "
                         "an autoregressive (AR) perturbation per class",
    "spectral_profile": "the classes' spectra differ far more than natural classes do: a "
                        "class-wise filter (blur) or frequency pattern",
    "border": "some class's one-pixel border is much darker or brighter than the row inside "
              "it: a zero-padded class-wise filter",
    "pixel_constancy": "in most classes one pixel keeps (nearly) the same value in every "
                       "image: a one-pixel shortcut (OPS)",
}


def _verdict(signal: str, flagged: bool, value: float, threshold: float, natural: float) -> dict:
    return {"flagged": bool(flagged), "statistic": STATISTICS[signal], "value": float(value),
            "threshold": float(threshold), "natural_level": float(natural),
            "meaning": MEANINGS[signal], "defenses": DEFENSES[signal] if flagged else []}


def inspect_dataset(images: torch.Tensor, labels: torch.Tensor, class_names: list[str] | None = None,
                    source: str = "tensors", seed: int = 0, progress: bool = True) -> dict:
    """Runs the five signals on a labelled image set; returns the report (a JSON-ready
    dict). images: uint8 [0, 255] or float32 [0, 1] NCHW, one size. labels: class indices;
    classes without images are ignored, and at least two must remain."""
    start = time.perf_counter()
    _check(images, labels)
    present = torch.unique(labels)
    if len(present) < 2:
        raise ValueError(f"labels: need at least 2 classes to compare, got "
                         f"{len(present)} ({len(labels)} images)")
    y = torch.searchsorted(present, labels)  # classes without images dropped
    names = [class_names[int(k)] if class_names and int(k) < len(class_names) else str(int(k))
             for k in present]
    K, n = len(present), len(images)
    x = images.contiguous()

    with tqdm(total=5 * n, desc="inspect", unit="img", disable=not progress) as bar:
        sep = separability.linear_separability(x, y, K, seed=seed)
        bar.update(2 * n)
        grams = autoregressive.class_grams(x, y, K, progress=bar.update)
        ar = autoregressive.ar_predictability(grams)
        spectra, radii = spectral.class_spectra(x, y, K, progress=bar.update)
        spec = spectral.spectral_spread(spectra)
        border = spectral.border_profile(x, y, K)
        constancy = pixel_constancy.pixel_constancy(x, y, K)
        bar.update(n)

    flag_sep = sep["score"] > sep["natural_score"] + separability.FLAG_MARGIN
    flag_ar = (ar["median_gain"] > autoregressive.FLAG_MEDIAN_GAIN
               or ar["max_gain"] > autoregressive.FLAG_MAX_GAIN)
    flag_spec = spec["high_spread_db"] > spectral.FLAG_SPREAD_DB
    flag_border = border["max_abs_log_ratio"] > spectral.FLAG_BORDER_LOG
    flag_pixel = constancy["median_min_std"] < pixel_constancy.FLAG_MIN_STD
    # signal: (its statistics, flagged, value, threshold, natural level)
    results = {
        "linear_separability": (sep, flag_sep, sep["score"],
                                sep["natural_score"] + separability.FLAG_MARGIN,
                                sep["natural_score"]),
        "ar_predictability": (ar, flag_ar, ar["median_gain"], autoregressive.FLAG_MEDIAN_GAIN,
                              autoregressive.NATURAL_MEDIAN_GAIN),
        "spectral_profile": ({**spec, "radius": radii[1:].tolist()}, flag_spec,
                             spec["high_spread_db"], spectral.FLAG_SPREAD_DB,
                             spectral.NATURAL_SPREAD_DB),
        "border": (border, flag_border, border["max_abs_log_ratio"], spectral.FLAG_BORDER_LOG,
                   spectral.NATURAL_BORDER_LOG),
        "pixel_constancy": (constancy, flag_pixel, constancy["median_min_std"],
                            pixel_constancy.FLAG_MIN_STD, pixel_constancy.NATURAL_MIN_STD),
    }
    signals = {name: {**stats, "verdict": _verdict(name, *verdict)}
               for name, (stats, *verdict) in results.items()}
    return {"schema": SCHEMA, "flagged": any(s["verdict"]["flagged"] for s in signals.values()),
            "data": {"source": source, "num_images": n, "image_shape": list(x.shape[1:]),
                     "dtype": str(x.dtype).removeprefix("torch."), "num_classes": K,
                     "class_names": names, "class_labels": present.tolist(),
                     "images_per_class": torch.bincount(y, minlength=K).tolist()},
            "signals": signals, "seconds": time.perf_counter() - start}


def inspect_path(path: str | os.PathLike, seed: int = 0, progress: bool = True) -> dict:
    """inspect_dataset on the training images of an .npz or an image folder."""
    x, y, names, source = load_images(path)
    return inspect_dataset(x, y, names, source, seed=seed, progress=progress)


__all__ = ["inspect_dataset", "inspect_path", "load_images", "write_report", "SCHEMA"]
