"""`poisonkit reproduce PAPER`: a seed paper's matrix of conditions, trained with the
paper's protocol, reported as a markdown table and a PNG with the published number beside
each measured one.

Scales: 'cpu' (the shared 10k CIFAR-10 subset, or --data, the small CNN, minutes per cell)
and 'paper' (full CIFAR-10, ResNet-18, the paper's epochs: a GPU run). Published numbers
are ResNet-18 on full CIFAR-10 (DESIGN §3), so at cpu scale they are a direction, not a
target. Conditions whose op is not in this build are listed as 'not available in this
build' and run as soon as their op registers. Resumable: finished cells with the same
settings are reused.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .._io import write_json, write_text
from .conditions import ConditionError, check_spec
from .models import NESTEROV
from .protocols import get_protocol
from .run import run_matrix
from .train import TrainConfig


@dataclass(frozen=True)
class Cell:
    poison: str
    defense: str
    published: float | None = None   # percent, clean test accuracy
    source: str = ""


@dataclass(frozen=True)
class Paper:
    title: str
    protocol: str | None              # forced on every cell; None: each defense's own
    cells: tuple[Cell, ...]
    epochs: dict = field(default_factory=lambda: {"cpu": 15, "paper": 60})
    batch_size: dict = field(default_factory=lambda: {"cpu": 256, "paper": 128})
    notes: tuple[str, ...] = ()


_ISS = "ISS README table (liuzrcc/ImageShortcutSqueezing), ResNet-18"
_ISS_ROWS = {"none": (94.68, 92.41, 85.38), "em": (21.05, 93.01, 81.50), "lsp": (19.07, 82.47, 83.01),
             "ar": (13.28, 34.04, 85.15), "ops": (36.55, 42.44, 82.53), "tap": (8.17, 9.11, 83.87)}

PAPERS: dict[str, Paper] = {
    "rskff": Paper(
        "Learning from Convolution-Based Unlearnable Datasets (Kim & Sandoval-Segura, 2024): "
        "CUDA vs RSK+FF", "rskff",
        (Cell("none", "none"),
         Cell("blur", "none", 23.25, "RSK+FF paper / CUDA paper, CIFAR-10 ResNet-18"),
         Cell("blur", "rsk+ff", 78.53, "RSK+FF paper, CIFAR-10 ResNet-18, 60 epochs"),
         Cell("blur", "rsk+ff-reflect", None, "poisonkit variant (reflect-restored 30->32)")),
        epochs={"cpu": 4, "paper": 60}, batch_size={"cpu": 256, "paper": 512}),
    "projection": Paper(
        "Orthogonal projection (Sandoval-Segura et al., NeurIPS 2023): poisons +- projection",
        "projection-step2",
        tuple(Cell(p, d, pub, "projection paper, CIFAR-10 ResNet-18" if pub is not None else "")
              for p, pubs in (("lsp", (25.7, 87.9)), ("ops", (15.3, 87.9)), ("ar", (None, None)),
                              ("em", (None, None)), ("tap", (None, None)))
              for d, pub in zip(("none", "projection"), pubs)),
        epochs={"cpu": 15, "paper": 50}, batch_size={"cpu": 128, "paper": 128},
        notes=("the poison-only cells are the step-2 recipe without the projection (the "
               "script's --no-project)",)),
    "iss": Paper(
        "Image Shortcut Squeezing (Liu et al., ICML 2023): grayscale / JPEG-10 vs each poison",
        "iss",
        tuple(Cell(p, d, pub, _ISS) for p, pubs in _ISS_ROWS.items()
              for d, pub in zip(("none", "grayscale", "jpeg:10"), pubs)),
        epochs={"cpu": 15, "paper": 60}, batch_size={"cpu": 128, "paper": 128}),
    "ar": Paper(
        "Autoregressive perturbations (Sandoval-Segura et al., NeurIPS 2022) vs defenses", None,
        (Cell("none", "none"),
         Cell("ar", "none", 11.75, "AR paper, CIFAR-10 ResNet-18, final epoch"),
         Cell("ar", "grayscale", 34.04, _ISS), Cell("ar", "jpeg:10", 85.15, _ISS),
         Cell("ar", "projection"), Cell("ar", "rsk+ff"), Cell("ar", "pgd:madry")),
        epochs={"cpu": 15, "paper": 100}, batch_size={"cpu": 256, "paper": 128}),
    "peak": Paper(
        "Peak vs final accuracy and how fast each poison is learned", "harness",
        tuple(Cell(p, "none") for p in ("none", "blur", "ar", "lsp", "ops", "em", "tap")),
        epochs={"cpu": 15, "paper": 60}, batch_size={"cpu": 256, "paper": 128},
        notes=("no published table: the finding is the relation between the epochs to fit "
               "the training set and the peak accuracy (speed.png)",)),
}

SCALES = ("cpu", "paper")


def unavailable_reason(poison: str, defense: str) -> str | None:
    """Why a cell cannot run in this build (its op is missing or not registered), or None."""
    try:
        check_spec("poison", poison)
        check_spec("defense", defense)
    except ConditionError as e:
        return str(e)
    return None


def protocol_note(protocol: str | None) -> str:
    """What the report says about the protocol: the forced one with its source, else that
    each defense trains under its own (the poison-only cells under the harness)."""
    if protocol is None:
        return ("each defense under its own reference protocol (the protocol column; sources in "
                "poisonkit.eval.protocols); the poison-only cells under the harness protocol")
    return f"every cell under the '{protocol}' protocol: {get_protocol(protocol).source}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def reproduce(paper: str, scale: str = "cpu", out: str | os.PathLike | None = None,
              data: str | None = None, epochs: int | None = None, device: str = "auto",
              workers: int = 0, verbose: bool = True, train_subset: int | None = None,
              test_subset: int | None = None, batch_size: int | None = None) -> dict:
    """Runs `paper`'s matrix at `scale`; writes OUT/ (run_matrix's files) plus
    reproduce.md, reproduce.json and reproduce.png. Returns the reproduce.json payload."""
    from ..data import load_dataset
    if paper not in PAPERS:
        raise ValueError(f"paper: expected one of {sorted(PAPERS)}, got {paper!r}")
    if scale not in SCALES:
        raise ValueError(f"scale: expected one of {SCALES}, got {scale!r}")
    spec = PAPERS[paper]
    out = Path(out or f"out/reproduce-{paper}-{scale}")
    model = "small" if scale == "cpu" else "resnet18"
    n_epochs = epochs or spec.epochs[scale]
    config = TrainConfig(epochs=n_epochs, batch_size=batch_size or spec.batch_size[scale],
                         nesterov=NESTEROV[model])
    missing = {(c.poison, c.defense): unavailable_reason(c.poison, c.defense) for c in spec.cells}
    runnable = [(c.poison, c.defense) for c in spec.cells if missing[(c.poison, c.defense)] is None]
    if data is None and scale == "paper":
        data = "cifar10"
    dataset = load_dataset(data)
    if train_subset or test_subset:
        dataset = dataset.subset(train_subset, test_subset)
    notes = [f"scale {scale}: {model}, {n_epochs} epochs; published numbers are ResNet-18 on "
             "full CIFAR-10", protocol_note(spec.protocol), *spec.notes]
    results = run_matrix(runnable, dataset, out, model=model, config=config, device=device,
                         workers=workers, resume=True, title=spec.title, notes=notes,
                         verbose=verbose, protocol=spec.protocol) if runnable else []
    measured = {(r["poison"], r["defense"]): r for r in results}
    rows = []
    for c in spec.cells:
        r = measured.get((c.poison, c.defense))
        rows.append({"poison": c.poison, "defense": c.defense, "published": c.published,
                     "source": c.source,
                     "peak": None if r is None else 100 * r["peak_accuracy"],
                     "final": None if r is None else 100 * r["final_accuracy"],
                     "protocol": None if r is None else r["protocol"],
                     "unavailable": missing[(c.poison, c.defense)]})
    payload = {"schema": "poisonkit.reproduce/1", "paper": paper, "title": spec.title,
               "scale": scale, "model": model, "epochs": n_epochs, "data": dataset.source,
               "notes": notes, "rows": rows}
    write_json(out / "reproduce.json", payload)
    write_text(out / "reproduce.md", _markdown(payload))
    if any(r["peak"] is not None for r in rows):
        _plot(payload, out / "reproduce.png")
    print((out / "reproduce.md").read_text())
    return payload


def _markdown(payload: dict) -> str:
    lines = [f"# reproduce {payload['paper']} ({payload['scale']} scale)", "", payload["title"], "",
             f"Data: {payload['data']}; model {payload['model']}, {payload['epochs']} epochs.", "",
             "| poison | defense | published (%) | measured peak (%) | measured final (%) | protocol | source |",
             "|---|---|---|---|---|---|---|"]
    for r in payload["rows"]:
        if r["unavailable"]:
            lines.append(f"| {r['poison']} | {r['defense']} | {_pct(r['published'])} | not available "
                         f"in this build | | | {r['source']} |")
        else:
            lines.append(f"| {r['poison']} | {r['defense']} | {_pct(r['published'])} | {_pct(r['peak'])} "
                         f"| {_pct(r['final'])} | {r['protocol']} | {r['source']} |")
    lines += [""] + [f"- {n}" for n in payload["notes"]] + ["", "![published vs measured](reproduce.png)", ""]
    return "\n".join(lines)


def _plot(payload: dict, path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from .report import _save_figure
    rows = [r for r in payload["rows"] if r["peak"] is not None]
    labels = [r["poison"] if r["defense"] == "none" else f"{r['poison']} + {r['defense']}" for r in rows]
    x = range(len(rows))
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(rows)), 4))
    ax.bar([i - 0.2 for i in x], [r["peak"] for r in rows], 0.4, label=f"measured peak ({payload['scale']})")
    pub = [(i, r["published"]) for i, r in zip(x, rows) if r["published"] is not None]
    ax.bar([i + 0.2 for i, _ in pub], [v for _, v in pub], 0.4, label="published (ResNet-18, CIFAR-10)")
    ax.set_xticks(list(x), labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("clean test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    ax.set_title(f"reproduce {payload['paper']}: published vs measured")
    return _save_figure(fig, path)
