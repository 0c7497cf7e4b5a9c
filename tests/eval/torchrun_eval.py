"""Entry run by tests/eval/test_distributed.py under torchrun: the `poisonkit eval`
command, with the training set's fetches recorded, then this rank's record written to
OUT/rank<R>.json (the sample indices it trained on and the results it computed)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from poisonkit import cli, data
from poisonkit.eval import run

seen: list[int] = []
fetch = data.PoisonedTensorDataset.__getitems__


def recording_fetch(self, indices):
    seen.extend(int(i) for i in indices)
    return fetch(self, indices)


results: list[dict] = []
run_matrix = run.run_matrix


def recording_run_matrix(*args, **kwargs):
    results.extend(run_matrix(*args, **kwargs))
    return results


if __name__ == "__main__":
    out = Path(sys.argv[1])
    data.PoisonedTensorDataset.__getitems__ = recording_fetch
    run.run_matrix = recording_run_matrix
    code = cli.main(["eval", "--out", str(out / "eval"), *sys.argv[2:]])
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    record = {"rank": rank, "world_size": int(os.environ.get("WORLD_SIZE", 1)), "seen": seen,
              "test_accuracy": [r["test_accuracy"] for r in results],
              "train_accuracy": [r["train_accuracy"] for r in results]}
    (out / f"rank{rank}.json").write_text(json.dumps(record))
    sys.exit(code)
