"""Helpers of the tests that run `poisonkit poison` as a real subprocess and interrupt it
part way (killed, raced): a random .npz source, the process started on it (importing this
checkout), and a wait that fails if the process ends before the moment it waits for."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def random_npz(path: Path, images: int, test_images: int) -> Path:
    """An .npz of random uint8 32x32 RGB images labelled 0-9 in turn."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (images, 32, 32, 3), dtype=np.uint8)
    y = np.arange(images) % 10
    np.savez(path, x_train=x, y_train=y, x_test=x[:test_images], y_test=y[:test_images])
    return path


def start_poison(src: Path, out: Path, *options: str) -> subprocess.Popen:
    """`poisonkit poison --method classwise-blur` from src to out on one thread; stderr
    (text) is kept for the failure messages, stdout dropped."""
    cmd = [sys.executable, "-m", "poisonkit", "poison", "--method", "classwise-blur",
           "--data", str(src), "--out", str(out), *options]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def wait_for(predicate, proc: subprocess.Popen, timeout: float) -> None:
    """Polls predicate() until true; fails if proc ends first or the time runs out."""
    end = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"the export ended before the awaited moment: " \
                                    f"{proc.communicate()[1]}"
        assert time.monotonic() < end, "the export did not reach the awaited moment in time"
        time.sleep(0.01)
