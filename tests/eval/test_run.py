"""End to end on tiny procedural data (1 epoch): every condition trains, the records
validate, files are complete (written then renamed), resume reuses only matching runs."""
import json

import pytest
import torch

from poisonkit._io import atomic_write, write_json
from poisonkit.data import synthetic_dataset
from poisonkit.eval import report, run
from poisonkit.eval.conditions import DEFENSES, UNAVAILABLE_POISONS, ConditionError, ConditionUnavailable
from poisonkit.eval.run import run_condition, run_matrix
from poisonkit.eval.train import TrainConfig

TINY = TrainConfig(epochs=1, batch_size=32, test_batch_size=64)


@pytest.fixture(scope="module")
def tiny():
    return synthetic_dataset(train=64, test=32, size=16)  # small images: fast steps


@pytest.mark.parametrize("defense", sorted(set(DEFENSES) - {"pgd"}) + ["pgd:steps=1"])
def test_every_defense_trains_on_the_poison(tiny, defense):
    result, examples = run_condition(tiny, "blur", defense, config=TINY, verbose=False)
    assert report.validate_result(result) is result
    assert result["poison"] == "blur" and result["defense"] == defense
    assert examples["poisoned"].shape == (10, 3, 16, 16)


def test_clean_condition_trains_on_the_stored_images(tiny):
    result, examples = run_condition(tiny, "none", "none", config=TrainConfig(epochs=2, batch_size=32),
                                     verbose=False)
    assert len(result["test_accuracy"]) == 2 and result["data"]["train"] == 64
    assert torch.equal(examples["poisoned"], tiny.x_train[run.example_picks(tiny.y_train)])


def test_unknown_and_unavailable_conditions_fail_before_training(tiny, tmp_path, monkeypatch):
    with pytest.raises(ConditionError, match="unknown name"):
        run_matrix([("none", "none"), ("blur", "sharpen")], tiny, tmp_path, config=TINY)
    monkeypatch.setitem(UNAVAILABLE_POISONS, "future-op", "its op is not merged into this build")
    with pytest.raises(ConditionUnavailable):
        run_matrix([("none", "none"), ("future-op", "none")], tiny, tmp_path, config=TINY)
    assert not any(tmp_path.iterdir())  # nothing trained, nothing written


def _record(**changes):
    r = {"schema": report.SCHEMA, "poison": "blur", "defense": "none", "model": "small", "epochs": 3,
         "data": {}, "config": {}, "device": "cpu", "test_accuracy": [0.2, 0.4, 0.3],
         "train_accuracy": [0.1] * 3, "train_loss": [1.0] * 3, "epoch_seconds": [1.0] * 3,
         "peak_accuracy": 0.4, "peak_epoch": 2, "final_accuracy": 0.3, "seconds": 3.0}
    r.update(changes)
    return r


@pytest.mark.parametrize("changes, match", [
    ({"peak_epoch": 3}, "peak/final"), ({"final_accuracy": 0.4}, "peak/final"),
    ({"epochs": 2}, "3 test accuracies for 2 epochs"), ({"schema": "x/0"}, "schema"),
    ({"peak_epoch": 2.0}, "'peak_epoch' must be int"), ({"seconds": None}, "'seconds' must be float"),
])
def test_validate_result_rejects_inconsistent_records(changes, match):
    report.validate_result(_record())
    with pytest.raises(ValueError, match=match):
        report.validate_result(_record(**changes))


def test_validate_result_rejects_missing_keys():
    r = _record()
    del r["peak_accuracy"]
    with pytest.raises(ValueError, match="missing key 'peak_accuracy'"):
        report.validate_result(r)


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "r.json"
    write_json(path, {"a": 1})

    def broken(tmp):
        open(tmp, "w").write('{"half": ')
        raise RuntimeError("interrupted")
    with pytest.raises(RuntimeError):
        atomic_write(path, broken)
    with pytest.raises(TypeError):
        write_json(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_matrix_writes_a_complete_report_and_resumes(tiny, tmp_path, monkeypatch, capsys):
    conditions = [("none", "none"), ("blur", "none"), ("blur", "jpeg:10")]
    results = run_matrix(conditions, tiny, tmp_path, config=TINY, verbose=False)
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert files == ["README.md", "curves.png", "examples.png", "results.json",
                     "runs/blur__jpeg-10.json", "runs/blur__none.json",
                     "runs/none__none.json", "speed.png"]
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["schema"] == report.MATRIX_SCHEMA
    assert [report.validate_result(r) for r in saved["runs"]] == results
    readme = (tmp_path / "README.md").read_text()
    assert "| blur | jpeg:10 |" in readme and "curves.png" in readme
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"

    def fail(*args, **kwargs):
        raise AssertionError("should have reused the finished run")
    monkeypatch.setattr(run, "run_condition", fail)
    again = run_matrix(conditions, tiny, tmp_path, config=TINY, resume=True, verbose=False)
    assert again == results and "reusing" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="reused"):  # other settings: not reused
        run_matrix(conditions[:1], tiny, tmp_path, config=TrainConfig(epochs=1, batch_size=16),
                   resume=True, verbose=False)


def test_projection_runs_report_the_linear_models_train_accuracy(tiny):
    result, _ = run_condition(tiny, "blur", "projection:epochs=1", config=TINY, verbose=False)
    linear = result["linear_train_accuracy"]
    assert 0 <= linear <= 1
    table = report.markdown_table([result])
    assert "linear model train acc." in table and f"| {linear:.1%} |" in table
    plain, _ = run_condition(tiny, "blur", "none", config=TINY, verbose=False)
    assert "linear_train_accuracy" not in plain and "| - |" in report.markdown_table([plain])
