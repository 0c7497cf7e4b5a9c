"""poisonkit._staging: the destination lock, and cleanup that only touches this
destination's leftovers of dead runs (issue 14, finding 1)."""
import os
import subprocess
import sys

import numpy as np
import pytest

from poisonkit._staging import DestinationBusy, DestinationLock, Staging
from poisonkit.poisons.export import poison_dataset


@pytest.fixture(scope="module")
def dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_lock_refuses_a_second_holder_and_removes_its_file(tmp_path):
    dest = tmp_path / "race"
    with DestinationLock(dest, "a" * 16):
        assert (tmp_path / ".race.lock").read_text().split() == [str(os.getpid()), "a" * 16]
        with pytest.raises(DestinationBusy, match=f"pid/run {os.getpid()}"):
            with DestinationLock(dest, "b" * 16):
                pass
        with DestinationLock(tmp_path / "race.v2", "c" * 16):  # another destination: free
            pass
    assert not list(tmp_path.iterdir())
    with DestinationLock(dest, "d" * 16):  # free again
        pass


def test_export_waits_for_no_one_while_the_destination_is_locked(tmp_path):
    x = np.zeros((4, 8, 8, 3), np.uint8)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=np.arange(4), x_test=x, y_test=np.arange(4))
    with DestinationLock(tmp_path / "out", "e" * 16):
        with pytest.raises(DestinationBusy, match="another run is writing"):
            poison_dataset(tmp_path / "d.npz", tmp_path / "out", method="classwise-blur",
                           progress=False)
    assert not (tmp_path / "out").exists()


def test_cleanup_touches_only_dead_runs_of_the_same_destination(tmp_path, dead_pid):
    token = "0123456789abcdef"
    dead = tmp_path / f".race.{dead_pid}.{token}.partial"
    live = tmp_path / f".race.{os.getppid()}.{token}.partial"  # our parent is alive
    neighbour = tmp_path / f".race.v2.{dead_pid}.{token}.partial"
    other = tmp_path / f".race.{dead_pid}.notatoken.partial"
    for folder in (dead, live, neighbour, other):
        folder.mkdir()
        (folder / "x.png").write_bytes(b"x")
    with Staging(tmp_path / "race") as stage:
        (stage.path / "new").write_text("new")
        stage.publish()
    assert not dead.exists()
    assert live.exists() and neighbour.exists() and other.exists()
    assert (tmp_path / "race" / "new").read_text() == "new"


def test_a_previous_copy_left_aside_by_a_killed_publish_is_restored(tmp_path, dead_pid):
    aside = tmp_path / f".race.{dead_pid}.0123456789abcdef.old"
    aside.mkdir()
    (aside / "manifest.json").write_text("{}")
    with Staging(tmp_path / "race"):
        assert (tmp_path / "race" / "manifest.json").exists() and not aside.exists()
    assert (tmp_path / "race" / "manifest.json").exists()


def test_a_failed_run_removes_its_staging_and_lock(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with Staging(tmp_path / "race") as stage:
            (stage.path / "half").write_text("x")
            raise KeyboardInterrupt
    assert not list(tmp_path.iterdir())
