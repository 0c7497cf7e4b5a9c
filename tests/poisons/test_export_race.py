"""Concurrent `poisonkit poison` processes (issue 14, finding 1): cleanup once deleted every
`.race.*.partial` beside the output, so a run to out/race destroyed the live staging
folder of a run to out/race.v2, which then published a fraction of its PNGs under a
manifest claiming all of them. Real subprocesses here; the first is paused (SIGSTOP) while
its staging folder is live and the second runs from start to end, so they always overlap."""
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
import torch
from PIL import Image

from poisonkit import keys
from poisonkit.data import load_npz
from poisonkit.poisons.export import default_key_file
from poisonkit.transforms import ClasswiseBlur

ROOT = Path(__file__).resolve().parents[2]
IMAGES = 300


@pytest.fixture(scope="module")
def src_npz(tmp_path_factory):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (IMAGES, 32, 32, 3), dtype=np.uint8)
    y = np.arange(IMAGES) % 10
    path = tmp_path_factory.mktemp("src") / "race.npz"
    np.savez(path, x_train=x, y_train=y, x_test=x[:20], y_test=y[:20])
    return path


def start(src: Path, out: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "poisonkit", "poison", "--method", "classwise-blur",
           "--format", "png", "--data", str(src), "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_until_staging(parent: Path, name: str, proc: subprocess.Popen) -> None:
    end = time.monotonic() + 120
    while not list(parent.glob(f".{name}.*.partial/*/train/*/*.png")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, "the export did not start writing in time"
        time.sleep(0.02)


def assert_complete_and_correct(out_dir: Path, src: Path) -> None:
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert manifest["counts"] == {"train": IMAGES, "test": 20}
    copy = out_dir / "race"
    pngs = sorted(copy.glob("train/*/*.png"))
    assert len(pngs) == IMAGES and len(list(copy.glob("test/*/*.png"))) == 20
    record = keys.read_key_file(default_key_file(out_dir))
    blur = ClasswiseBlur(10)
    blur.kernels = torch.tensor(record["secrets"]["blur_kernels"])
    data = load_npz(src)
    for i in (0, IMAGES // 2, IMAGES - 1):
        label = int(data["y_train"][i])
        written = torch.from_numpy(np.array(Image.open(copy / "train" / str(label) / f"{i:07d}.png")))
        assert torch.equal(written.permute(2, 0, 1), blur(data["x_train"][i], label)[0])


def test_concurrent_exports_to_neighbouring_names_both_complete(src_npz, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    victim = start(src_npz, out / "race.v2")
    try:
        wait_until_staging(out, "race.v2", victim)
        victim.send_signal(signal.SIGSTOP)  # a live run, mid-write
        other = start(src_npz, out / "race")
        _, err = other.communicate(timeout=300)
        assert other.returncode == 0, err
        assert list(out.glob(".race.v2.*.partial")), "the live staging folder was deleted"
        victim.send_signal(signal.SIGCONT)
        _, err = victim.communicate(timeout=300)
        assert victim.returncode == 0, err
    finally:
        victim.send_signal(signal.SIGCONT)
        victim.kill()
    for name in ("race.v2", "race"):
        assert_complete_and_correct(out / name, src_npz)
    assert sorted(p.name for p in out.iterdir()) == ["race", "race.key.json", "race.v2",
                                                     "race.v2.key.json"]
