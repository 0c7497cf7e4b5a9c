"""Results: one JSON per run and for the matrix (written to a temporary name, then renamed,
so no reader ever sees half a file), a markdown table, and matplotlib PNGs (accuracy
curves per condition, a grid of example images)."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from .._io import atomic_write

SCHEMA = "poisonkit.eval/1"                # one run
MATRIX_SCHEMA = "poisonkit.eval.matrix/1"  # results.json: {"schema", "runs": [...], "notes": [...]}
# Every run record holds these keys (accuracies are fractions; epochs are 1-based).
RESULT_KEYS = {
    "schema": str, "poison": str, "defense": str, "model": str, "epochs": int,
    "data": dict, "config": dict, "device": str,
    "test_accuracy": list, "train_accuracy": list, "train_loss": list, "epoch_seconds": list,
    "peak_accuracy": float, "peak_epoch": int, "final_accuracy": float, "seconds": float,
}


def validate_result(obj) -> dict:
    """Checks a run record against RESULT_KEYS and its own consistency; returns it."""
    if not isinstance(obj, dict):
        raise ValueError(f"result: expected a JSON object, got {type(obj).__name__}")
    for key, kind in RESULT_KEYS.items():
        if key not in obj:
            raise ValueError(f"result: missing key {key!r}")
        if not isinstance(obj[key], kind) or (kind is int and isinstance(obj[key], bool)):
            raise ValueError(f"result: {key!r} must be {kind.__name__}, got {type(obj[key]).__name__}")
    if obj["schema"] != SCHEMA:
        raise ValueError(f"result: schema {obj['schema']!r}, expected {SCHEMA!r}")
    accs = obj["test_accuracy"]
    if len(accs) != obj["epochs"] or not accs:
        raise ValueError(f"result: {len(accs)} test accuracies for {obj['epochs']} epochs")
    if (obj["peak_accuracy"] != max(accs) or accs[obj["peak_epoch"] - 1] != max(accs)
            or obj["final_accuracy"] != accs[-1]):
        raise ValueError("result: peak/final do not match test_accuracy")
    return obj


def label(result: dict) -> str:
    return result["poison"] if result["defense"] == "none" else f"{result['poison']} + {result['defense']}"


def epochs_to_99(result: dict) -> int | None:
    """Epochs to 99% training accuracy (None: not reached), from the run's history."""
    return next((i + 1 for i, a in enumerate(result["train_accuracy"]) if a >= 0.99), None)


def _dfr(result: dict) -> str:
    probe = result.get("probe_result")
    return f"{probe['accuracy']:.1%}" if probe else "-"


def _speed(result: dict) -> str:
    speed = epochs_to_99(result)
    return str(speed) if speed is not None else f"> {len(result['train_accuracy'])}"


def linear_note(result: dict) -> str:
    """', linear model train acc. X%' for a fitted projection (how well the linear model
    captured the poison: the signal that says whether projection can work), else ''."""
    acc = result.get("linear_train_accuracy")
    return "" if acc is None else f", linear model train acc. {acc:.1%}"


def _linear(result: dict) -> str:
    acc = result.get("linear_train_accuracy")
    return "-" if acc is None else f"{acc:.1%}"


def markdown_table(results: list[dict]) -> str:
    rows = ["| poison | defense | protocol | peak test acc. (epoch) | final test acc. | DFR test acc. "
            "| epochs to 99% train acc. | linear model train acc. | time |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        rows.append(f"| {r['poison']} | {r['defense']} | {r.get('protocol', 'harness')} "
                    f"| {r['peak_accuracy']:.1%} ({r['peak_epoch']}) | {r['final_accuracy']:.1%} "
                    f"| {_dfr(r)} | {_speed(r)} | {_linear(r)} | {r['seconds']:.0f} s |")
    return "\n".join(rows)


def _save_figure(fig, path) -> Path:
    import matplotlib.pyplot as plt
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110,
                                                          bbox_inches="tight"))
    finally:
        plt.close(fig)


def plot_curves(results: list[dict], path: str | os.PathLike) -> Path:
    """Clean test accuracy per epoch, one line per condition, its peak marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in results:
        epochs = range(1, len(r["test_accuracy"]) + 1)
        line, = ax.plot(epochs, [100 * a for a in r["test_accuracy"]], marker=".", label=label(r))
        ax.plot(r["peak_epoch"], 100 * r["peak_accuracy"], "o", color=line.get_color(), mfc="none")
    ax.set_xlabel("epoch")
    ax.set_ylabel("clean test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    ax.set_title("clean test accuracy per epoch (circle: peak)")
    return _save_figure(fig, path)


def plot_examples(rows: list[tuple[str, torch.Tensor]], path: str | os.PathLike) -> Path:
    """A grid of example images: one labelled row per (label, uint8 or [0, 1] NCHW images)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cols = max(len(x) for _, x in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(cols * 0.9, len(rows) * 0.95), squeeze=False)
    for (name, images), row in zip(rows, axes):
        for j, ax in enumerate(row):
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_frame_on(False)
            if j < len(images):
                im = images[j].float() / (255 if images.dtype == torch.uint8 else 1)
                ax.imshow(im.clamp(0, 1).permute(1, 2, 0).squeeze(-1).numpy(), cmap="gray",
                          vmin=0, vmax=1, interpolation="nearest")
        row[0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    return _save_figure(fig, path)


def plot_speed(results: list[dict], path: str | os.PathLike) -> Path:
    """Peak clean test accuracy vs how fast the training set is fitted, one point per run:
    left, epochs to 99% training accuracy (runs that never reach it sit at the right edge,
    hollow); right, the last epoch's training loss (short runs rarely reach 99%)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax, ax_loss) = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    edge = max(len(r["train_accuracy"]) for r in results) + 1
    for r in results:
        speed = epochs_to_99(r)
        peak = 100 * r["peak_accuracy"]
        for axis, x, hollow in ((ax, speed if speed is not None else edge, speed is None),
                                (ax_loss, r["train_loss"][-1], False)):
            axis.plot(x, peak, "o", mfc="none" if hollow else None)
            axis.annotate(label(r), (x, peak), fontsize=7, xytext=(4, 2), textcoords="offset points")
    ax.axvline(edge - 0.5, color="gray", lw=0.5, ls=":")
    ax.set_xlim(0.5, edge + 0.5)
    ax.set_xlabel(f"epochs to 99% training accuracy (right of the dotted line: not reached in {edge - 1})")
    ax.set_ylabel("peak clean test accuracy (%)")
    ax.set_ylim(0, 100)
    ax_loss.set_xlabel("training loss at the last epoch")
    for axis in (ax, ax_loss):
        axis.grid(alpha=0.3)
    fig.suptitle("peak accuracy vs how fast the training set is fitted")
    return _save_figure(fig, path)
