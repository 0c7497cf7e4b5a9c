"""Where orthogonal projection starts to work (issue 15): the LSP poison on random subsets
of the 10k CIFAR-10 set with about n images per class (class-balanced in expectation),
n in {100, 250, 500, 1000}, and the projection's linear model fitted for E in {1, 5, 20}
epochs. Per cell: the linear model's train accuracy on the poisoned set, and the small
CNN's peak clean test accuracy trained without and with the projection. The projected
sets train under the harness protocol by default (--recipe 0), like the unprojected ones,
so the cells differ by the projection alone; --recipe 1 adds the reference's step-2
recipe (strong augmentation, CutMix), which at a few epochs costs accuracy by itself.

Each size is one `poisonkit eval --resume` folder under out/projection_regime/ (a cut run
keeps its finished cells); writes benchmarks/results/projection_regime.{json,md,png}.

Run: python -m benchmarks.projection_regime [--sizes 100,250,500,1000]
     [--linear-epochs 1,5,20] [--epochs 5] [--poison lsp] [--recipe 0] [--collect-only]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cifar10-10k.npz"
RESULTS = ROOT / "benchmarks" / "results"
TEST_IMAGES = 1000


def run_size(data: str, out: Path, poison: str, per_class: int, linear_epochs: list[int],
             epochs: int, recipe: int) -> None:
    cmd = [sys.executable, "-m", "poisonkit", "eval", "--model", "small", "--epochs", str(epochs),
           "--data", data, "--out", str(out), "--resume", "--train-subset", str(10 * per_class),
           "--test-subset", str(TEST_IMAGES), "--poison", poison, "--defense", "none"]
    for e in linear_epochs:
        cmd += ["--defense", f"projection:epochs={e},recipe={recipe}"]
    subprocess.run(cmd, check=True, cwd=ROOT)


def collect(root: Path, poison: str, epochs: int, recipe: int) -> dict:
    """Every finished run under root/n*/runs, one row per (size, linear epochs)."""
    from poisonkit.eval.conditions import parse_spec
    from poisonkit.eval.report import validate_result
    rows, baseline = [], {}
    for folder in sorted(root.glob("n*"), key=lambda p: int(p.name[1:])):
        per_class = int(folder.name[1:])
        for path in sorted((folder / "runs").glob("*.json")):
            r = validate_result(json.loads(path.read_text()))
            if r["epochs"] != epochs or r["poison"].split(":")[0] != poison:
                continue
            name, _, kwargs = parse_spec(r["defense"])
            if name == "none":
                baseline[per_class] = r
            elif name == "projection" and int(kwargs.get("recipe", 1)) == recipe:
                rows.append({"images_per_class": per_class, "train_images": r["data"]["train"],
                             "linear_epochs": int(kwargs.get("epochs", 20)),
                             "linear_train_accuracy": r.get("linear_train_accuracy"),
                             "peak_with_projection": r["peak_accuracy"],
                             "peak_epoch_with": r["peak_epoch"]})
    for row in rows:
        base = baseline.get(row["images_per_class"])
        row["peak_without_projection"] = None if base is None else base["peak_accuracy"]
    rows.sort(key=lambda r: (r["images_per_class"], r["linear_epochs"]))
    return {"poison": poison, "model": "small", "epochs": epochs, "test_images": TEST_IMAGES,
            "projection_training": "step-2 recipe" if recipe else "harness (crop+flip)",
            "rows": rows}


def markdown(result: dict) -> str:
    pct = lambda v: "-" if v is None else f"{100 * v:.1f}%"
    lines = [f"# Where projection starts to work ({result['poison']}, small CNN, "
             f"{result['epochs']} epochs, {result['test_images']} test images)", "",
             "Random subsets of the 10k CIFAR-10 set (about n images per class); the linear "
             "model of the projection fitted for the given epochs on the poisoned set; the "
             f"projected sets trained under: {result['projection_training']}.", "",
             "| images/class | linear epochs | linear train acc. | peak without | peak with "
             "projection (epoch) |", "|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        lines.append(f"| {r['images_per_class']} | {r['linear_epochs']} | "
                     f"{pct(r['linear_train_accuracy'])} | {pct(r['peak_without_projection'])} | "
                     f"{pct(r['peak_with_projection'])} ({r['peak_epoch_with']}) |")
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    for e in sorted({r["linear_epochs"] for r in result["rows"]}):
        rows = [r for r in result["rows"] if r["linear_epochs"] == e]
        n = [r["images_per_class"] for r in rows]
        left.plot(n, [100 * r["linear_train_accuracy"] for r in rows], "o-", label=f"{e} epochs")
        right.plot(n, [100 * r["peak_with_projection"] for r in rows], "o-",
                   label=f"projection, linear {e} ep.")
    base = sorted({(r["images_per_class"], r["peak_without_projection"]) for r in result["rows"]
                   if r["peak_without_projection"] is not None})
    if base:
        right.plot([b[0] for b in base], [100 * b[1] for b in base], "k--", label="no defense")
    for ax, title in ((left, "linear model train acc. (%)"), (right, "CNN peak test acc. (%)")):
        ax.set_xscale("log")
        ax.set_xlabel("images per class")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=os.environ.get("POISONKIT_DATA", str(DEFAULT_DATA)))
    parser.add_argument("--sizes", default="100,250,500,1000", help="images per class")
    parser.add_argument("--linear-epochs", default="1,5,20")
    parser.add_argument("--epochs", type=int, default=5, help="CNN epochs")
    parser.add_argument("--poison", default="lsp")
    parser.add_argument("--recipe", type=int, choices=(0, 1), default=0,
                        help="train the projected sets with the step-2 recipe (1) or the harness (0)")
    parser.add_argument("--out", default=str(ROOT / "out" / "projection_regime"))
    parser.add_argument("--collect-only", action="store_true")
    args = parser.parse_args()
    out = Path(args.out)
    if not args.collect_only:
        for per_class in (int(s) for s in args.sizes.split(",")):
            run_size(args.data, out / f"n{per_class}", args.poison, per_class,
                     [int(e) for e in args.linear_epochs.split(",")], args.epochs, args.recipe)
    result = collect(out, args.poison, args.epochs, args.recipe)
    if not result["rows"]:
        sys.exit(f"no finished projection runs under {out}: nothing written")
    from poisonkit._io import write_json, write_text
    write_json(RESULTS / "projection_regime.json", result)
    write_text(RESULTS / "projection_regime.md", markdown(result))
    plot(result, RESULTS / "projection_regime.png")
    print(markdown(result))


if __name__ == "__main__":
    main()
