"""The harness under `torchrun --nproc_per_node 2` on CPU (gloo), one epoch on a tiny
procedural dataset: the ranks train on disjoint shards covering the training set, agree
on the accuracies, and rank 0 alone prints the summary and writes the report."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TRAIN, TEST = 256, 128


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torchrun not found beside the python executable")
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node", "2", str(ROOT / "tests/eval/torchrun_eval.py"),
         str(out), "--data", "synthetic", "--train-subset", str(TRAIN), "--test-subset", str(TEST),
         "--epochs", "1", "--batch-size", "32", "--poison", "blur"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    return out, proc.stdout, ranks


def test_ranks_train_on_disjoint_shards_covering_the_set(launched):
    _, _, ranks = launched
    assert [r["world_size"] for r in ranks] == [2, 2]
    shards = [set(r["seen"]) for r in ranks]
    assert all(len(r["seen"]) == TRAIN // 2 == len(s) for r, s in zip(ranks, shards))
    assert not shards[0] & shards[1]
    assert shards[0] | shards[1] == set(range(TRAIN))


def test_ranks_agree_on_accuracy_and_rank0_reports_once(launched):
    out, stdout, ranks = launched
    assert ranks[0]["test_accuracy"] == ranks[1]["test_accuracy"]
    assert ranks[0]["train_accuracy"] == ranks[1]["train_accuracy"]  # totals over both shards
    assert len(re.findall(r"^blur / none: peak", stdout, re.MULTILINE)) == 1
    assert stdout.count("wrote ") == 1
    matrix = json.loads((out / "eval" / "results.json").read_text())
    assert [run["test_accuracy"] for run in matrix["runs"]] == ranks[0]["test_accuracy"]
