"""Killing `poisonkit poison` part way (SIGKILL, SIGINT) leaves the destination absent or
complete, never partial, and a second run succeeds."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from poisonkit.data import load_npz
from poisonkit.poisons.export import poison_dataset

ROOT = Path(__file__).resolve().parents[2]
IMAGES = 12000  # a few seconds of poisoning and writing: time to be killed in the middle


@pytest.fixture(scope="module")
def big_npz(tmp_path_factory):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (IMAGES, 32, 32, 3), dtype=np.uint8)
    y = np.arange(IMAGES) % 10
    path = tmp_path_factory.mktemp("src") / "big.npz"
    np.savez(path, x_train=x, y_train=y, x_test=x[:16], y_test=y[:16])
    return path


def assert_absent_or_complete(out_dir: Path) -> bool:
    """True when the copy is there (and whole), False when absent; fails on anything else."""
    if not out_dir.exists():
        return False
    assert sorted(p.name for p in out_dir.iterdir()) == ["big.npz", "manifest.json"]
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert manifest["counts"] == {"train": IMAGES, "test": 16}
    assert load_npz(out_dir / "big.npz")["x_train"].shape == (IMAGES, 3, 32, 32)
    return True


def wait_for(predicate, proc, timeout=60.0):
    end = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, "the export ended before it could be interrupted"
        assert time.monotonic() < end, "the export did not start writing in time"
        time.sleep(0.01)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
@pytest.mark.parametrize("when", ["staged", "writing"])
def test_killed_export_leaves_nothing_partial(big_npz, tmp_path, sig, when):
    out_dir = tmp_path / "out"
    cmd = [sys.executable, "-m", "poisonkit", "poison", "--method", "classwise-blur",
           "--data", str(big_npz), "--out", str(out_dir), "--batch-size", "500"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        staged = lambda: any(tmp_path.glob(".out.*.partial"))  # noqa: E731
        # "staged": killed while poisoning; "writing": once the npz is being written.
        wait_for(staged if when == "staged" else
                 lambda: any(tmp_path.glob(".out.*.partial/big.npz")), proc)
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    # Killed before the final rename: absent; a run that won the race: complete.
    assert assert_absent_or_complete(out_dir) == (proc.returncode == 0)
    if sig == signal.SIGINT:  # an interrupted run cleans up after itself
        assert not list(tmp_path.glob(".out.*")), list(tmp_path.iterdir())
    poison_dataset(big_npz, out_dir, method="classwise-blur", progress=False,
                   force=proc.returncode == 0)
    assert assert_absent_or_complete(out_dir)
    assert not list(tmp_path.glob(".out.*"))
