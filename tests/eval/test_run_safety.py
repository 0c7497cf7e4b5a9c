"""Eval outputs never hold a key, every condition is built before the first training, and
--resume notices changed data (issue 14, findings 2, 4, 5); `eval` and `fit-projection`
check --out before any work."""
import numpy as np
import pytest

from poisonkit.cli import main
from poisonkit.data import synthetic_dataset
from poisonkit.eval import run
from poisonkit.eval.conditions import ConditionError
from poisonkit.eval.run import content_hash, public_spec, run_matrix
from poisonkit.eval.train import TrainConfig

TINY = TrainConfig(epochs=1, batch_size=32, test_batch_size=64)
KEY = "3987654321"  # < 2^32: the blur seed


@pytest.fixture(scope="module")
def tiny():
    return synthetic_dataset(train=64, test=32, size=16)


def all_output_text(folder):
    """Every file name and every byte of every file under folder, as one string."""
    parts = []
    for path in sorted(folder.rglob("*")):
        parts.append(str(path.relative_to(folder)))
        if path.is_file():
            parts.append(path.read_bytes().decode("latin-1"))
    return "\n".join(parts)


def test_keys_never_reach_eval_outputs(tiny, tmp_path, monkeypatch):
    conditions = [(f"blur:key={KEY}", "none"), (f"blur:0.3,{KEY}", "ssk")]  # named, positional
    results = run_matrix(conditions, tiny, tmp_path, config=TINY, verbose=False)
    assert KEY not in all_output_text(tmp_path)
    shown = {r["poison"] for r in results}
    assert len(shown) == 2 and all("key=#" in s for s in shown)
    # Same key and data -> same id, so --resume finds the run; another key does not match.
    calls = []
    real = run.run_condition
    monkeypatch.setattr(run, "run_condition", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    run_matrix(conditions[:1] + [("blur:key=5", "none")], tiny, tmp_path, config=TINY,
               resume=True, verbose=False)
    assert calls == ["blur:key=5"]


def test_public_spec_keeps_keyless_conditions_as_written():
    assert public_spec("defense", "jpeg:10", b"s") == "jpeg:10"
    assert public_spec("poison", "ar:eps=0.5,key=7", b"s").startswith("ar:eps=0.5,key=#")


def test_every_condition_is_built_before_the_first_training(tiny, tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("trained before checking every condition")
    monkeypatch.setattr(run, "run_condition", fail)
    for bad in ("jpeg:200", "pgd:eps=-1", "projection:path=/nonexistent.pt"):
        with pytest.raises((ConditionError, FileNotFoundError), match="jpeg|eps|nonexistent"):
            run_matrix([("none", "none"), ("blur", bad)], tiny, tmp_path, config=TINY)
    with pytest.raises(ConditionError, match="ar"):
        run_matrix([("none", "none"), ("ar:eps=-1", "none")], tiny, tmp_path, config=TINY)
    assert not any(tmp_path.iterdir())


def test_resume_notices_changed_images(tiny, tmp_path, monkeypatch):
    run_matrix([("none", "none")], tiny, tmp_path, config=TINY, verbose=False)
    changed = synthetic_dataset(train=64, test=32, size=16)
    changed.x_train[5, 0, 3, 3] ^= 1  # same source name, sizes and labels; one pixel differs
    assert content_hash(changed) != content_hash(tiny)
    calls = []
    real = run.run_condition
    monkeypatch.setattr(run, "run_condition", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    run_matrix([("none", "none")], changed, tmp_path, config=TINY, resume=True, verbose=False)
    run_matrix([("none", "none")], changed, tmp_path, config=TINY, resume=True, verbose=False)
    assert calls == ["none"]  # retrained once for the new data, then reused


def eval_cli(out, *extra):
    return main(["eval", "--data", "synthetic", "--train-subset", "32", "--test-subset", "16",
                 "--epochs", "1", "--out", str(out), *extra])


def test_eval_out_is_checked_before_any_work(tmp_path, capsys):
    (tmp_path / "file").write_text("keep")
    assert eval_cli(tmp_path / "file") == 2
    assert "existing file" in capsys.readouterr().err
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "README.md").write_text("mine")
    assert eval_cli(tmp_path / "report") == 2
    assert "--force" in capsys.readouterr().err
    assert (tmp_path / "report" / "README.md").read_text() == "mine"
    data = tmp_path / "d.npz"
    x = np.zeros((4, 8, 8, 3), np.uint8)
    np.savez(data, x_train=x, y_train=np.arange(4), x_test=x, y_test=np.arange(4))
    assert main(["eval", "--data", str(tmp_path), "--out", str(tmp_path / "sub"), "--epochs", "1"]) == 2
    assert "sit inside the input" in capsys.readouterr().err
    assert main(["eval", "--data", "synthetic", "--defense", f"projection:path={data}",
                 "--out", str(data), "--epochs", "1"]) == 2
    assert (tmp_path / "file").read_text() == "keep" and data.stat().st_size > 0


def test_fit_projection_refuses_to_overwrite_its_input(tmp_path, capsys):
    data = tmp_path / "poisoned.npz"
    x = np.random.default_rng(0).integers(0, 256, (20, 8, 8, 3), dtype=np.uint8)
    np.savez(data, x_train=x, y_train=np.arange(20) % 2, x_test=x[:2], y_test=np.arange(2))
    before = data.read_bytes()
    for out in (data, tmp_path / "." / "poisoned.npz"):
        assert main(["fit-projection", "--data", str(data), "--out", str(out), "--epochs", "1"]) == 2
        assert "overwrite" in capsys.readouterr().err
    assert data.read_bytes() == before
    out = tmp_path / "q.pt"
    args = ["fit-projection", "--data", str(data), "--out", str(out), "--epochs", "1",
            "--milestones", "1", "--batch-size", "8"]
    assert main(args) == 0 and out.is_file()
    assert main(args) == 2 and "--force" in capsys.readouterr().err
    assert main(args + ["--force"]) == 0
    np.savez(data, x_train=x, y_train=(np.arange(20) % 2).astype(np.float32), x_test=x[:2],
             y_test=np.arange(2))
    assert main(args + ["--force"]) == 2
    assert "integer class labels" in capsys.readouterr().err
