"""`reproduce`: published beside measured, rows for ops not in this build, picked up once
registered, resumable."""
import json

import pytest

from poisonkit.cli import main
from poisonkit.data import synthetic_dataset
from poisonkit.eval import conditions, run
from poisonkit.eval.protocols import PROTOCOLS
from poisonkit.eval.reproduce import PAPERS, Cell, Paper, reproduce


@pytest.fixture
def tiny_paper(monkeypatch):
    paper = Paper("a tiny paper", "rskff",
                  (Cell("none", "none"), Cell("blur", "none", 23.25, "DESIGN 3.2"),
                   Cell("future-op", "none", 50.0, "not yet")),
                  epochs={"cpu": 1, "paper": 1}, batch_size={"cpu": 32, "paper": 32})
    monkeypatch.setitem(PAPERS, "tiny", paper)
    monkeypatch.setattr("poisonkit.data.load_dataset",
                        lambda spec=None, **kw: synthetic_dataset(train=64, test=32, size=16))
    return "tiny"


def test_every_paper_names_its_protocol_and_cells():
    for name, paper in PAPERS.items():
        assert paper.cells and all(isinstance(c, Cell) for c in paper.cells), name
        assert paper.protocol is None or paper.protocol in PROTOCOLS
    assert {c.published for c in PAPERS["rskff"].cells} >= {23.25, 78.53}


def test_reproduce_shows_published_beside_measured_and_missing_ops(tiny_paper, tmp_path, monkeypatch):
    payload = reproduce(tiny_paper, out=tmp_path, verbose=False)
    rows = {(r["poison"], r["defense"]): r for r in payload["rows"]}
    assert rows[("blur", "none")]["published"] == 23.25 and rows[("blur", "none")]["protocol"] == "rskff"
    assert 0 <= rows[("blur", "none")]["peak"] <= 100
    assert rows[("future-op", "none")]["unavailable"] and rows[("future-op", "none")]["peak"] is None
    md = (tmp_path / "reproduce.md").read_text()
    assert "| blur | none | 23.25 |" in md and "| future-op | none | 50.00 | not available in this build |" in md
    assert (tmp_path / "reproduce.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "reproduce.json").read_text()) == payload

    # the op lands: its cell runs, the finished ones are reused
    monkeypatch.setitem(conditions.POISONS, "future-op", lambda ctx: None)
    trained = []
    real = run.run_condition
    monkeypatch.setattr(run, "run_condition", lambda data, p, d, *a, **k: trained.append(p) or real(data, p, d, *a, **k))
    again = reproduce(tiny_paper, out=tmp_path, verbose=False)
    assert trained == ["future-op"]
    assert {(r["poison"], r["unavailable"]) for r in again["rows"]} == {("none", None), ("blur", None), ("future-op", None)}


def test_cli_reproduce(tiny_paper, tmp_path, capsys):
    assert main(["reproduce", tiny_paper, "--out", str(tmp_path)]) == 0
    assert "not available in this build" in capsys.readouterr().out
    assert (tmp_path / "reproduce.md").is_file() and (tmp_path / "runs" / "blur__none.json").is_file()
    with pytest.raises(SystemExit):
        main(["reproduce", "no-such-paper"])
