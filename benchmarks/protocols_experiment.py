"""Issue 16's measurements on the real 10k CIFAR-10 subset with the small CNN: AR with the
published vs a sampled coefficient set; projection with and without the step-2 recipe on
AR, LSP and OPS; DFR accuracy (every run carries the DFR probe: a clean 10% of the
training set held out); the peak-vs-speed plot across none, blur, AR, LSP and OPS. Each
defense trains under its own reference protocol (see each run's 'protocol'). The RSK+FF
geometry comparison is `poisonkit reproduce rskff --scale cpu`. Resumable: --only runs a
subset of the poisons (e.g. two processes splitting the matrix); a last run without
--only reuses every finished cell and writes the whole report.
Run: OMP_NUM_THREADS=1 nice -n 10 python -m benchmarks.protocols_experiment [--epochs 4]
[--train-subset 5000]"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from poisonkit.data import load_dataset
from poisonkit.eval.run import _slug, run_matrix
from poisonkit.eval.train import TrainConfig

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-10k.npz"
# Must-show cells first, so a cut run keeps them.
CONDITIONS = [("ar", "none"), ("ar:coefficients=sampled", "none"), ("blur", "none"),
              ("ar", "projection"), ("ar", "projection:recipe=0"),
              ("lsp", "none"), ("lsp", "projection"), ("lsp", "projection:recipe=0"),
              ("ops", "none"), ("ops", "projection"), ("ops", "projection:recipe=0"),
              ("none", "none")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=os.environ.get("POISONKIT_DATA", str(DEFAULT_DATA)))
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--out", default="benchmarks/results/protocols")
    parser.add_argument("--only", default=None,
                        help="comma-separated poison names (before any ':'): run only their cells")
    parser.add_argument("--finished-only", action="store_true",
                        help="write the report from the cells already in OUT/runs, training none")
    parser.add_argument("--train-subset", type=int, default=None, help="random training subset size")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    conditions = CONDITIONS
    if args.only:
        keep = set(args.only.split(","))
        conditions = [c for c in CONDITIONS if c[0].partition(":")[0] in keep]
        if not conditions:
            parser.error(f"--only {args.only}: no condition has one of these poisons")
    if args.finished_only:  # keyless specs: the run file is named by the spec itself
        conditions = [c for c in conditions if (Path(args.out) / "runs" / f"{_slug(*c)}.json").is_file()]
    data = load_dataset(args.data)
    if args.train_subset:
        data = data.subset(args.train_subset, None)
    notes = [f"small CNN, {args.epochs} epochs, seed 0, one run per cell, {data.source}, on a "
             "shared 2-core machine (one thread per run; the load while measured is in the "
             "project README): expect a few points of noise",
             "DFR: last linear layer refitted (full-batch LBFGS on eval-mode features) on a "
             "clean, held-out 10% of the training split that was never trained on"]
    run_matrix(conditions, data, args.out, model="small",
               config=TrainConfig(epochs=args.epochs, batch_size=args.batch_size, nesterov=True), resume=True,
               title="Reference protocols, AR coefficient sets, projection recipe, DFR",
               notes=notes, verbose=False, probe="dfr")


if __name__ == "__main__":
    main()
