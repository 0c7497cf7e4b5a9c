"""Killing `poisonkit poison` part way (SIGKILL, SIGINT) leaves the destination absent or
complete, never partial, and a second run succeeds."""
from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from poisonkit.data import load_npz
from poisonkit.poisons.export import poison_dataset
from tests.poison_cli import random_npz, start_poison, wait_for

IMAGES = 12000  # a few seconds of poisoning and writing: time to be killed in the middle


@pytest.fixture(scope="module")
def big_npz(tmp_path_factory):
    return random_npz(tmp_path_factory.mktemp("src") / "big.npz", IMAGES, 16)


def assert_absent_or_complete(out_dir: Path) -> bool:
    """True when the copy is there (and whole), False when absent; fails on anything else."""
    if not out_dir.exists():
        return False
    assert sorted(p.name for p in out_dir.iterdir()) == ["big.npz", "manifest.json"]
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert manifest["counts"] == {"train": IMAGES, "test": 16}
    assert load_npz(out_dir / "big.npz")["x_train"].shape == (IMAGES, 3, 32, 32)
    return True


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
@pytest.mark.parametrize("when", ["staged", "writing"])
def test_killed_export_leaves_nothing_partial(big_npz, tmp_path, sig, when):
    out_dir = tmp_path / "out"
    proc = start_poison(big_npz, out_dir, "--batch-size", "500")
    try:
        staged = lambda: any(tmp_path.glob(".out.*.partial"))  # noqa: E731
        # "staged": killed while poisoning; "writing": once the npz is being written.
        wait_for(staged if when == "staged" else
                 lambda: any(tmp_path.glob(".out.*.partial/big.npz")), proc, timeout=60)
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
