"""Concurrent `poisonkit poison` processes (issue 14, finding 1): cleanup once deleted every
`.race.*.partial` beside the output, so a run to out/race destroyed the live staging
folder of a run to out/race.v2, which then published a fraction of its PNGs under a
manifest claiming all of them. Real subprocesses here; the first is paused (SIGSTOP) while
its staging folder is live and the second runs from start to end, so they always overlap."""
from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from poisonkit import keys
from poisonkit.data import load_npz
from poisonkit.poisons.export import default_key_file
from poisonkit.transforms import ClasswiseBlur
from tests.poison_cli import random_npz, start_poison, wait_for

IMAGES = 300


@pytest.fixture(scope="module")
def src_npz(tmp_path_factory):
    return random_npz(tmp_path_factory.mktemp("src") / "race.npz", IMAGES, 20)


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
    victim = start_poison(src_npz, out / "race.v2", "--format", "png")
    try:
        wait_for(lambda: any(out.glob(".race.v2.*.partial/*/train/*/*.png")), victim, timeout=120)
        victim.send_signal(signal.SIGSTOP)  # a live run, mid-write
        other = start_poison(src_npz, out / "race", "--format", "png")
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
