"""The attribution report: report.json (every query's neighbours, scores, labels and, on a
partially poisoned training set, which neighbours are poisoned), report.md (a summary
table) and neighbours.png (each query beside its top training images with their scores)."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from .._io import write_json, write_text
from ..eval.report import _save_figure
from .attribute import Attribution

SCHEMA = "poisonkit-attribution/1"
GRID_NEIGHBOURS = 10   # columns of the PNG; the JSON holds all k


def poisoned_fractions(indices: torch.Tensor, poisoned: torch.Tensor) -> torch.Tensor:
    """[Q] share of each query's neighbours that are poisoned (poisoned: bool [N])."""
    return poisoned[indices].float().mean(1)


def build(result: Attribution, train_labels: torch.Tensor, query_labels: torch.Tensor | None,
          poisoned: torch.Tensor | None, meta: dict) -> dict:
    queries = []
    for q in range(len(result.indices)):
        idx = result.indices[q]
        entry = {"query": q, "neighbours": idx.tolist(), "scores": [round(float(s), 6) for s in result.scores[q]],
                 "neighbour_labels": train_labels[idx].tolist()}
        if query_labels is not None:
            entry["label"] = int(query_labels[q])
            entry["same_label_fraction"] = float((train_labels[idx] == query_labels[q]).float().mean())
        if result.query_classes is not None:
            entry["restricted_to_class"] = int(result.query_classes[q])
        if poisoned is not None:
            entry["neighbour_poisoned"] = poisoned[idx].tolist()
            entry["poisoned_fraction"] = float(poisoned[idx].float().mean())
        queries.append(entry)
    report = {"schema": SCHEMA, **meta, "backbone": result.backbone, "k": result.indices.shape[1],
              "queries": queries}
    if poisoned is not None:
        report["poisoned_fraction"] = float(poisoned_fractions(result.indices, poisoned).mean())
        report["poisoned_share_of_training_set"] = float(poisoned.float().mean())
    return report


def markdown(report: dict) -> str:
    k = report["k"]
    lines = [f"# Attribution: top-{k} training images per query", "",
             f"Backbone `{report['backbone']}`; data {report.get('data', '?')} "
             f"({report.get('train_images', '?')} training images); cosine similarity of "
             "L2-normalised features.", ""]
    if "poisoned_fraction" in report:
        lines += [f"Poisoned share of the top-{k} neighbours, mean over queries: "
                  f"**{report['poisoned_fraction']:.1%}** (poisoned share of the training set: "
                  f"{report['poisoned_share_of_training_set']:.1%}, what random neighbours would give).", ""]
    header = ["query", "label", "top-1 (score)", f"mean top-{k} score", "same label"]
    poisoned = "poisoned_fraction" in report
    header += ["poisoned"] if poisoned else []
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for e in report["queries"]:
        cells = [str(e["query"]), str(e.get("label", "-")), f"{e['neighbours'][0]} ({e['scores'][0]:.3f})",
                 f"{sum(e['scores']) / len(e['scores']):.3f}",
                 f"{e['same_label_fraction']:.0%}" if "same_label_fraction" in e else "-"]
        cells += [f"{e['poisoned_fraction']:.0%}"] if poisoned else []
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "![neighbours](neighbours.png)", ""]
    return "\n".join(lines)


def plot_grid(queries: torch.Tensor, train_images: torch.Tensor, result: Attribution,
              poisoned: torch.Tensor | None, path: str | os.PathLike) -> Path:
    """One row per query: the query, then its first GRID_NEIGHBOURS neighbours with their
    scores (poisoned neighbours framed in red)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cols = 1 + min(GRID_NEIGHBOURS, result.indices.shape[1])
    fig, axes = plt.subplots(len(queries), cols, figsize=(cols * 0.95, len(queries) * 1.1), squeeze=False)
    show = lambda ax, im: ax.imshow((im.float() / (255 if im.dtype == torch.uint8 else 1)).clamp(0, 1)
                                    .permute(1, 2, 0).squeeze(-1).numpy(), cmap="gray", vmin=0, vmax=1,
                                    interpolation="nearest")
    for q, row in enumerate(axes):
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
        show(row[0], queries[q])
        row[0].set_title(f"query {q}", fontsize=7)
        for j, ax in enumerate(row[1:]):
            i = int(result.indices[q, j])
            show(ax, train_images[i])
            ax.set_title(f"#{i} {float(result.scores[q, j]):.2f}", fontsize=6)
            if poisoned is not None and poisoned[i]:
                for spine in ax.spines.values():
                    spine.set_edgecolor("red")
                    spine.set_linewidth(2)
    return _save_figure(fig, path)


def write(folder: str | os.PathLike, report: dict, queries: torch.Tensor, train_images: torch.Tensor,
          result: Attribution, poisoned: torch.Tensor | None) -> None:
    folder = Path(folder)
    write_json(folder / "report.json", report)
    write_text(folder / "report.md", markdown(report))
    plot_grid(queries, train_images, result, poisoned, folder / "neighbours.png")
