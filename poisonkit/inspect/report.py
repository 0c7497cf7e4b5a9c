"""The inspection report on disk: report.json (temporary name, then rename), report.md,
and PNG plots of the per-class spectra, the separability levels, the AR gains and the
border ratios."""
from __future__ import annotations

import os
from pathlib import Path

from .._io import write_json, write_text
from ..eval.report import _save_figure
from . import autoregressive

SIGNAL_TITLES = {"linear_separability": "Linear separability",
                 "ar_predictability": "AR predictability",
                 "spectral_profile": "Spectral profile", "border": "Border intensity",
                 "pixel_constancy": "Pixel constancy"}


def markdown(report: dict) -> str:
    d, s = report["data"], report["signals"]
    sep, ar, spec, border, pixel = (s[k] for k in SIGNAL_TITLES)
    lines = [f"# Dataset inspection: {d['source']}", "",
             f"{d['num_images']} images of shape {tuple(d['image_shape'])}, {d['num_classes']} "
             f"classes ({min(d['images_per_class'])}-{max(d['images_per_class'])} images each). "
             f"Verdict: **{'FLAGGED' if report['flagged'] else 'no class-wise shortcut found'}**.",
             "", "| signal | statistic | value | natural level | threshold | verdict |",
             "|---|---|---|---|---|---|"]
    for key, title in SIGNAL_TITLES.items():
        v = s[key]["verdict"]
        lines.append(f"| {title} | {v['statistic']} | {v['value']:.3f} | {v['natural_level']:.3f} "
                     f"| {v['threshold']:.3f} | {'**flagged**' if v['flagged'] else 'ok'} |")
    lines += ["", "## Details", "",
              f"- Linear model ({sep['protocol']}) training accuracy {sep['train_accuracy']:.1%}; with "
              f"shuffled labels {sep['shuffled_accuracy']:.1%}; natural images of this size "
              f"reach about {sep['natural_accuracy']:.1%} here (score {sep['natural_score']:.2f}, "
              f"measured on CIFAR-10 at {sep['natural_reference_side']} px); chance {sep['chance']:.1%}.",
              f"- AR: the class's own causal 3x3 filter removes {ar['median_gain']:.1%} (median; "
              f"largest class {ar['max_gain']:.1%}) of the error the shared filter leaves on the "
              "high-pass residual.",
              f"- Spectrum: across-class spread up to {spec['max_spread_db']:.2f} dB, "
              f"{spec['high_spread_db']:.2f} dB on average over the upper half of the frequencies.",
              f"- Border: largest |log ratio| {border['max_abs_log_ratio']:.3f}.",
              f"- Pixel constancy: the least varying pixel of a class has std "
              f"{min(pixel['min_std']):.2f} to {max(pixel['min_std']):.2f} (0-255) over the "
              "classes.", "",
              "| class | images | AR explained (own / shared) | AR gain | mean border (0-255) | "
              "border / next row (top, bottom, left, right) |", "|---|---|---|---|---|---|"]
    for k, name in enumerate(d["class_names"]):
        ratios = ", ".join(f"{r:.2f}" for r in border["ratio"][k])
        lines.append(f"| {name} | {d['images_per_class'][k]} | {ar['explained_own'][k]:.3f} / "
                     f"{ar['explained_shared'][k]:.3f} | {ar['gain'][k]:.3f} | "
                     f"{border['mean_border'][k]:.1f} | {ratios} |")
    flagged = [(SIGNAL_TITLES[k], s[k]["verdict"]) for k in SIGNAL_TITLES if s[k]["verdict"]["flagged"]]
    if flagged:
        lines += ["", "## What it means and the defenses that address it", ""]
        for title, v in flagged:
            lines.append(f"- **{title}**: {v['meaning']}.")
            lines += [f"  - {defense}" for defense in v["defenses"]]
    lines += ["", "Plots: spectra.png, separability.png, ar.png, border.png.",
              f"Inspection took {report['seconds']:.1f} s.", ""]
    return "\n".join(lines)


def _figure(size, ncols: int = 1):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt.subplots(1, ncols, figsize=size)


def plot_spectra(report: dict, path) -> Path:
    spec, names = report["signals"]["spectral_profile"], report["data"]["class_names"]
    fig, (ax, ax2) = _figure((10, 4), ncols=2)
    for name, db in zip(names, spec["spectra_db"]):
        ax.plot(spec["radius"], db, label=name, lw=1)
    ax.set_xlabel("radial frequency (cycles per image)")
    ax.set_ylabel("normalised power (dB)")
    ax.set_title("mean power spectrum per class")
    ax.legend(fontsize=7, ncol=2)
    ax2.plot(spec["radius"], spec["spread_db"], marker=".")
    ax2.set_xlabel("radial frequency (cycles per image)")
    ax2.set_ylabel("std across classes (dB)")
    ax2.set_title("spread across classes")
    ax2.grid(alpha=0.3)
    return _save_figure(fig, path)


def plot_separability(report: dict, path) -> Path:
    sep = report["signals"]["linear_separability"]
    fig, ax = _figure((5, 3.5))
    bars = {"chance": sep["chance"], "shuffled labels": sep["shuffled_accuracy"],
            "natural reference": sep["natural_accuracy"], "this data": sep["train_accuracy"]}
    ax.bar(list(bars), [100 * v for v in bars.values()],
           color=["0.7", "0.5", "tab:green", "tab:red" if sep["verdict"]["flagged"] else "tab:blue"])
    ax.set_ylabel("linear model train accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("linear separability")
    return _save_figure(fig, path)


def plot_ar(report: dict, path) -> Path:
    ar, names = report["signals"]["ar_predictability"], report["data"]["class_names"]
    fig, ax = _figure((6, 3.5))
    ax.bar(names, ar["gain"])
    ax.axhline(autoregressive.FLAG_MEDIAN_GAIN, color="tab:red", ls="--", label="flag (median)")
    ax.set_ylabel("share of shared-filter error removed")
    ax.set_title("AR predictability per class")
    ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    ax.legend(fontsize=7)
    return _save_figure(fig, path)


def plot_border(report: dict, path) -> Path:
    border, names = report["signals"]["border"], report["data"]["class_names"]
    fig, ax = _figure((6, 3.5))
    for side, values in zip(("top", "bottom", "left", "right"), zip(*border["ratio"])):
        ax.plot(names, values, marker="o", ls="none", label=side)
    ax.axhline(1.0, color="0.5", lw=0.8)
    ax.set_ylabel("border row mean / next row mean")
    ax.set_title("border intensity per class")
    ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    ax.legend(fontsize=7)
    return _save_figure(fig, path)


def write_report(report: dict, out: str | os.PathLike) -> dict[str, Path]:
    """Writes report.json, report.md and the PNGs into out; returns their paths."""
    out = Path(out)
    paths = {"json": write_json(out / "report.json", report),
             "markdown": write_text(out / "report.md", markdown(report))}
    for name, plot in (("spectra", plot_spectra), ("separability", plot_separability),
                       ("ar", plot_ar), ("border", plot_border)):
        paths[name] = plot(report, out / f"{name}.png")
    return paths
