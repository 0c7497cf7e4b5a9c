"""The orthogonal projection defense on the real 10k CIFAR-10 subset (DESIGN section 3.4):
the linear model's training accuracy on clean data and on class-wise poisons, and a fresh
linear model's training accuracy after projecting with the fitted Q. About a minute on
2 cores. Run: python -m benchmarks.projection_experiment [--data PATH]"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from poisonkit.data import load_npz
from poisonkit.defenses.projection import fit
from poisonkit.transforms import ClasswiseBlur

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-10k.npz"


def additive_poison(x: torch.Tensor, y: torch.Tensor, eps: float = 8.0, seed: int = 0):
    """A fixed random +-eps/255 sign pattern per class, added to uint8 images."""
    g = torch.Generator().manual_seed(seed)
    pattern = (torch.randint(0, 2, (int(y.max()) + 1, *x.shape[1:]), generator=g) * 2 - 1) * eps
    return (x.float() + pattern[y]).clamp(0, 255).round().to(torch.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=os.environ.get("POISONKIT_DATA", str(DEFAULT_DATA)))
    args = parser.parse_args()
    torch.set_num_threads(2)
    d = load_npz(args.data)
    x, y = d["x_train"], d["y_train"]
    k = int(y.max()) + 1
    datasets = {"clean": x, "class-wise blur (CUDA poison)": ClasswiseBlur(num_classes=k)(x, y)[0],
                "class-wise additive +-8/255": additive_poison(x, y)}
    print(f"{len(x)} images, {k} classes; linear model, 20 epochs (DESIGN 3.4 protocol)")
    print(f"{'data':32s} {'linear train acc':>17s} {'refit on projected':>19s} "
          f"{'refit on clean projected':>25s}")
    for name, data in datasets.items():
        projection = fit((data, y), k, progress=False)
        refit = fit((projection.apply(data), y), k, progress=False).train_accuracy
        clean_refit = fit((projection.apply(x), y), k, progress=False).train_accuracy
        print(f"{name:32s} {projection.train_accuracy:17.2%} {refit:19.2%} {clean_refit:25.2%}",
              flush=True)


if __name__ == "__main__":
    main()
