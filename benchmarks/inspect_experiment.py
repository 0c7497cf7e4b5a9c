"""Dataset inspection on the real 10k CIFAR-10 subset and on poisoned copies made with
poisonkit (`poisonkit poison`): class-wise blur (seed 0, the reference kernels) and AR
(L2 eps 1.0, crop 4, the paper's CIFAR budget). Prints the table of signals and verdicts
and writes benchmarks/results/inspect_experiment.{json,md}. A minute or two on 2 cores.
Run: python -m benchmarks.inspect_experiment [--data PATH] [--work DIR]"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import torch

from poisonkit._io import write_json, write_text
from poisonkit.bench.common import machine
from poisonkit.inspect import inspect_path
from poisonkit.inspect.report import SIGNAL_TITLES
from poisonkit.poisons.export import poison_dataset

RESULTS = Path(__file__).resolve().parent / "results"

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-10k.npz"
POISONS = {"class-wise blur (seed 0)": dict(method="classwise-blur", seed=0),
           "AR (L2 eps 1.0, crop 4, key 0)": dict(method="ar", eps=1.0, p=2.0, crop=4, key=0)}


def table(rows: list[dict]) -> str:
    head = "| data | " + " | ".join(SIGNAL_TITLES.values()) + " | linear acc. / shuffled | flagged | seconds |"
    lines = [head, "|---" * (len(SIGNAL_TITLES) + 4) + "|"]
    for r in rows:
        cells = [f"{v['value']:.3f}{' **flag**' if v['flagged'] else ''}" for v in r["verdicts"].values()]
        lines.append(f"| {r['data']} | " + " | ".join(cells) +
                     f" | {r['linear_accuracy']:.1%} / {r['shuffled_accuracy']:.1%} | "
                     f"{'yes' if r['flagged'] else 'no'} | {r['seconds']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=os.environ.get("POISONKIT_DATA", str(DEFAULT_DATA)))
    parser.add_argument("--work", default=None, help="folder for the poisoned copies (default: a temporary one)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        sets = {"clean": Path(args.data)}
        for name, params in POISONS.items():
            sets[name] = poison_dataset(args.data, work / params["method"], force=True, **params)
        rows = []
        for name, path in sets.items():
            report = inspect_path(path, progress=False)
            sep = report["signals"]["linear_separability"]
            rows.append({"data": name, "flagged": report["flagged"], "seconds": report["seconds"],
                         "linear_accuracy": sep["train_accuracy"],
                         "shuffled_accuracy": sep["shuffled_accuracy"],
                         "verdicts": {k: report["signals"][k]["verdict"] for k in SIGNAL_TITLES}})
            print(f"{name}: flagged={report['flagged']} ({report['seconds']:.1f} s)", flush=True)
    thresholds = ", ".join(f"{title} {rows[0]['verdicts'][k]['threshold']:.3f}"
                           for k, title in SIGNAL_TITLES.items())
    text = (f"# Dataset inspection on clean and poisoned CIFAR-10 (10k subset)\n\n"
            f"Statistics (see poisonkit/inspect): {thresholds} are the flag thresholds.\n\n"
            + table(rows) + "\n\nSeconds: the whole inspection per set (load excluded), on a "
            "shared 2-core machine; expect noise.\n")
    print(text)
    write_json(RESULTS / "inspect_experiment.json", {"machine": machine(), "rows": rows})
    write_text(RESULTS / "inspect_experiment.md", text)


if __name__ == "__main__":
    main()
