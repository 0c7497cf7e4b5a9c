"""Issue 16's measurements on the real 10k CIFAR-10 subset with the small CNN: AR with the
published vs a sampled coefficient set, AR + projection with and without the step-2
recipe, DFR accuracy for blur and AR, and the peak-vs-speed plot across poisons (every run
carries the DFR probe: 10% of the training set held out clean). Each defense trains under
its own reference protocol (see each run's 'protocol'). The RSK+FF geometry comparison is
`poisonkit reproduce rskff --scale cpu`. Resumable.
Run: nice -n 10 python -m benchmarks.protocols_experiment [--epochs 10] [--out DIR]"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from poisonkit.data import load_dataset
from poisonkit.eval.run import run_matrix
from poisonkit.eval.train import TrainConfig

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-10k.npz"
CONDITIONS = [("blur", "none"), ("ar", "none"), ("ar:coefficients=sampled", "none"),
              ("ar", "projection"), ("ar", "projection:recipe=0")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=os.environ.get("POISONKIT_DATA", str(DEFAULT_DATA)))
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--out", default="benchmarks/results/protocols")
    parser.add_argument("--train-subset", type=int, default=None)
    parser.add_argument("--test-subset", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(2)
    data = load_dataset(args.data)
    if args.train_subset or args.test_subset:
        data = data.subset(args.train_subset, args.test_subset)
    notes = [f"small CNN, {args.epochs} epochs, seed 0, one run per cell, {data.source}, on a "
             "shared 2-core machine (load average ~20 while measured): expect a few points of noise",
             "DFR: last linear layer refitted (full-batch LBFGS on eval-mode features) on a "
             "clean, held-out 10% of the training split that was never trained on"]
    run_matrix(CONDITIONS, data, args.out, model="small",
               config=TrainConfig(epochs=args.epochs, batch_size=args.batch_size, nesterov=True), resume=True,
               title="Reference protocols, AR coefficient sets, projection recipe, DFR",
               notes=notes, verbose=False, probe="dfr")


if __name__ == "__main__":
    main()
