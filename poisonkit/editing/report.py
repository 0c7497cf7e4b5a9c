"""The evaluation's outputs: a JSON of every condition's metrics, a markdown table, the
metric-vs-JPEG-quality curves and an image grid (clean / protected / protected + JPEG, each
beside its VAE reconstruction)."""
from __future__ import annotations

import math
from pathlib import Path

import torch

from .._io import atomic_write, write_json, write_text
from .metrics import Probe, unit
from .purify import jpeg_quality, purification

# The protection counts as undone once less than this fraction of its pull survives.
UNDONE_BELOW = 0.5
COLUMNS = (("remaining", "remaining", "{:.2f}"), ("dist_target", "d(target)", "{:.2f}"),
           ("dist_target_clean", "d(target) clean", "{:.2f}"),
           ("dist_clean_latent", "d(clean latent)", "{:.2f}"),
           ("recon_psnr", "recon PSNR", "{:.2f}"), ("recon_psnr_clean", "recon PSNR clean", "{:.2f}"),
           ("recon_ssim", "recon SSIM", "{:.3f}"), ("recon_ssim_clean", "recon SSIM clean", "{:.3f}"),
           ("image_psnr", "image PSNR", "{:.2f}"))


def jpeg_curve(results: dict[str, dict]) -> list[tuple[int, dict]]:
    """(quality, summary) for the plain JPEG conditions, highest quality first."""
    points = [(jpeg_quality(spec), summary) for spec, summary in results.items()]
    return sorted(((q, s) for q, s in points if q is not None), key=lambda p: -p[0])


def undone_at(results: dict[str, dict], threshold: float = UNDONE_BELOW) -> int | None:
    """The highest JPEG quality whose `remaining` falls below threshold (None: none does)."""
    for quality, summary in jpeg_curve(results):
        if summary["remaining"] < threshold:
            return quality
    return None


def markdown_table(results: dict[str, dict]) -> str:
    present = [c for c in COLUMNS if any(c[0] in s for s in results.values())]
    lines = ["| purification | " + " | ".join(c[1] for c in present) + " |",
             "|---|" + "---:|" * len(present)]
    for spec, summary in results.items():
        cells = [c[2].format(summary[c[0]]) if c[0] in summary and math.isfinite(summary[c[0]])
                 else "-" for c in present]
        lines.append(f"| {spec} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_curves(results: dict[str, dict], path: Path, title: str = "") -> Path | None:
    """remaining, recon PSNR and latent distance to the target against JPEG quality,
    protected beside unprotected; None without JPEG conditions."""
    curve = jpeg_curve(results)
    if not curve:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    q = [p[0] for p in curve]
    none = results["none"]
    panels = [("remaining", None, "protection remaining (1 = intact)"),
              ("recon_psnr", "recon_psnr_clean", "PSNR of D(E(x)) vs clean (dB)"),
              ("dist_target", "dist_target_clean", "latent distance to target")]
    panels = [p for p in panels if p[0] in none]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6), squeeze=False)
    axes = axes[0]
    for ax, (key, clean_key, label) in zip(axes, panels):
        ax.plot(q, [p[1][key] for p in curve], "o-", label="protected")
        ax.axhline(none[key], color="C0", ls=":", lw=1, label="protected, no JPEG")
        if clean_key:
            ax.plot(q, [p[1][clean_key] for p in curve], "s--", color="C1", label="unprotected")
            ax.axhline(none[clean_key], color="C1", ls=":", lw=1, label="unprotected, no JPEG")
        else:
            ax.axhline(UNDONE_BELOW, color="grey", ls="--", lw=1, label="undone below")
        ax.set_xlabel("JPEG quality")
        ax.set_ylabel(label)
        ax.invert_xaxis()
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return path


def plot_grid(probe: Probe, clean: torch.Tensor, protected: torch.Tensor, specs: list[str],
              path: Path, count: int = 6) -> Path:
    """Rows: clean, protected, then protected under each spec, each followed by its VAE
    reconstruction D(E(.)); one column per image (the first `count`)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    clean, protected = clean[:count], protected[:count]
    rows = [("clean", clean), ("protected", protected)]
    rows += [(f"protected + {s}", purification(s)(protected)) for s in specs]
    shown = []
    for name, images in rows:
        shown.append((name, unit(images)))
        if probe.decodes:
            shown.append((f"D(E({name}))", probe.decode(probe.encode(images))))
    fig, axes = plt.subplots(len(shown), len(clean), figsize=(1.2 * len(clean), 1.25 * len(shown)),
                             squeeze=False)
    for r, (name, images) in enumerate(shown):
        for c in range(len(clean)):
            ax = axes[r][c]
            ax.imshow(images[c].permute(1, 2, 0).numpy(), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r][0].set_ylabel(name, fontsize=6, rotation=0, ha="right", va="center")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return path


def write_report(results: dict[str, dict], out: Path, meta: dict, stem: str = "editing") -> dict:
    """OUT/STEM.json (meta + results + undone_at_jpeg_quality), OUT/STEM.md and
    OUT/STEM.png (the curves); returns their paths."""
    out = Path(out)
    undone = undone_at(results)
    write_json(out / f"{stem}.json", {**meta, "undone_below": UNDONE_BELOW,
                                      "undone_at_jpeg_quality": undone, "results": results})
    verdict = (f"The protection is undone (less than {UNDONE_BELOW:.0%} of its pull toward the "
               f"target survives) from JPEG quality {undone} down."
               if undone is not None else
               f"No JPEG quality tested brings the protection below {UNDONE_BELOW:.0%}.")
    text = "\n".join(f"- {k}: {v}" for k, v in meta.items()) + "\n\n" + markdown_table(results) \
        + "\n" + verdict + "\n"
    write_text(out / f"{stem}.md", text)
    paths = {"json": out / f"{stem}.json", "markdown": out / f"{stem}.md"}
    curves = plot_curves(results, out / f"{stem}.png", meta.get("title", ""))
    if curves:
        paths["curves"] = curves
    return paths
