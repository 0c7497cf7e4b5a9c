"""`poisonkit bench` plumbing: results go to the folder named by --out (default in the
working directory, never the package), marked quick or full; a quick run refuses a folder
holding full results before anything runs; unknown names are errors. The benchmark bodies
are replaced by one that writes a fixed row (timings are not what is tested here)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import poisonkit
from poisonkit.bench import common, projection, run_all
from poisonkit.cli import main


@pytest.fixture
def fake_projection(monkeypatch):
    """projection.main writes one poisonkit row and one peer row through write_results."""
    calls = []

    def fake_main(quick: bool = False) -> None:
        calls.append(quick)
        common.write_results("projection", [
            {"case": "c", "impl": "poisonkit op", "images_per_s": 200.0},
            {"case": "c", "impl": "torch", "images_per_s": 100.0}], "fake")

    monkeypatch.setattr(projection, "main", fake_main)
    # configure() is global: leave the defaults for other tests
    monkeypatch.setattr(common, "OUTPUT", dict(common.OUTPUT))
    monkeypatch.setattr(common, "TIMING", dict(common.TIMING))
    return calls


def bench(*args: str) -> int:
    return main(["bench", "--only", "projection", *args])


def test_results_go_to_out_marked_quick_or_full(tmp_path, fake_projection):
    out = tmp_path / "results"
    assert bench("--quick", "--out", str(out)) == 0
    payload = json.loads((out / "projection.json").read_text())
    assert payload["quick"] is True and payload["rows"][0]["poisonkit_speedup"] == 1.0
    assert payload["rows"][1]["poisonkit_speedup"] == 2.0
    board = json.loads((out / "leaderboard.json").read_text())
    assert [(e["benchmark"], e["ratio"]) for e in board] == [("projection", 2.0)]
    assert (out / "leaderboard.md").is_file() and (out / "leaderboard.png").is_file()
    assert bench("--quick", "--out", str(out)) == 0  # quick over quick is fine
    assert bench("--out", str(out)) == 0  # full over quick too
    assert json.loads((out / "projection.json").read_text())["quick"] is False
    assert fake_projection == [True, True, False]


def test_default_out_is_in_the_working_directory(tmp_path, monkeypatch, fake_projection):
    monkeypatch.chdir(tmp_path)
    assert bench("--quick") == 0
    assert (tmp_path / common.DEFAULT_OUT / "projection.json").is_file()
    assert not common.DEFAULT_OUT.is_absolute()


def test_quick_refuses_a_folder_with_full_results(tmp_path, fake_projection, capsys):
    out = tmp_path / "results"
    assert bench("--out", str(out)) == 0
    before = (out / "projection.json").read_bytes()
    assert bench("--quick", "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert "projection.json" in err and "--quick" in err
    assert (out / "projection.json").read_bytes() == before
    assert fake_projection == [False]  # refused before running


def test_unmarked_results_count_as_full(tmp_path):
    # results committed before runs were marked quick/full
    (tmp_path / "ar.json").write_text(json.dumps({"benchmark": "ar", "rows": []}))
    (tmp_path / "leaderboard.json").write_text("[]")  # not a benchmark's results
    assert run_all.full_results(tmp_path) == ["ar.json"]
    with pytest.raises(ValueError, match="ar.json"):
        run_all.check_output(tmp_path, quick=True)
    run_all.check_output(tmp_path, quick=False)


def test_refuses_the_package_folder_and_unknown_names(tmp_path, fake_projection):
    package = Path(poisonkit.__file__).parent
    for out in (package, package / "bench" / "results"):
        with pytest.raises(ValueError, match="inside the poisonkit package"):
            run_all.run(out)
    with pytest.raises(ValueError, match="unknown benchmarks"):
        run_all.run(tmp_path, only=["nope"])
    assert fake_projection == []
