"""The `poisonkit` command: eval and demo end to end on tiny procedural data, and its
errors."""
import json
import re

import pytest

from poisonkit import demo
from poisonkit.cli import main
from poisonkit.eval.report import validate_result


def test_eval_runs_every_requested_condition(tmp_path, capsys):
    rc = main(["eval", "--poison", "blur", "--defense", "none", "--defense", "ssk", "--data", "synthetic",
               "--train-subset", "64", "--test-subset", "32", "--epochs", "1", "--out", str(tmp_path)])
    assert rc == 0
    runs = json.loads((tmp_path / "results.json").read_text())["runs"]
    assert [(r["poison"], r["defense"]) for r in runs] == [("blur", "none"), ("blur", "ssk")]
    assert all(validate_result(r) for r in runs)
    assert "| blur | ssk |" in capsys.readouterr().out


@pytest.mark.parametrize("args, match", [
    (["--poison", "nope"], "poison: unknown name 'nope'"),
    (["--defense", "nope"], "defense: unknown name 'nope'"),
    (["--defense", "jpeg:q=5"], "bad parameters"),
    (["--data", "/nonexistent/data.npz"], "does not exist"),
])
def test_eval_errors_are_reported_without_a_traceback(tmp_path, capsys, args, match):
    assert main(["eval", "--epochs", "1", "--out", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert "error:" in err
    assert re.search(match, err)


def test_demo_runs_the_available_matrix_and_notes_the_rest(tmp_path, capsys):
    kept, notes = demo.available_matrix()
    assert ("none", "none") in kept and ("blur", "none") in kept
    assert len(kept) + len(notes) == len(demo.MATRIX)
    rc = main(["demo", "--data", "synthetic", "--train-subset", "64", "--test-subset", "32",
               "--epochs", "1", "--out", str(tmp_path)])
    assert rc == 0
    readme = (tmp_path / "README.md").read_text()
    for poison, defense in kept:
        assert f"| {poison} | {defense} |" in readme
    for note in notes:
        assert note in readme


def test_version(capsys):
    import poisonkit
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"poisonkit {poisonkit.__version__}"
