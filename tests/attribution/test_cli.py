"""`poisonkit attribute` end to end on a small .npz, and its refusals (each naming the
argument, before any work)."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from poisonkit.cli import main


@pytest.fixture
def npz(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "data.npz"
    np.savez(path, x_train=rng.integers(0, 256, (80, 32, 32, 3), dtype=np.uint8), y_train=np.arange(80) % 4,
             x_test=rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8), y_test=np.arange(8) % 4)
    return path


def run(*args):
    return main(["attribute", *map(str, args)])


def test_report_with_poisoned_share(npz, tmp_path, capsys):
    out = tmp_path / "report"
    assert run("--data", npz, "--backbone", "pixels", "--query", "test:0-3", "--k", 5, "--out", out,
               "--poison", "blur:ratio=0.5", "--cache", tmp_path / "cache") == 0
    assert sorted(p.name for p in out.iterdir()) == ["neighbours.png", "report.json", "report.md"]
    report = json.loads((out / "report.json").read_text())
    assert report["k"] == 5 and len(report["queries"]) == 4
    assert 0 < report["poisoned_share_of_training_set"] < 1
    flags = [f for q in report["queries"] for f in q["neighbour_poisoned"]]
    assert report["poisoned_fraction"] == pytest.approx(np.mean(flags))
    assert "Poisoned share of the top-5 neighbours" in (out / "report.md").read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".report")]  # staging gone


def test_copies_given_as_image_files_retrieve_their_source(npz, tmp_path):
    x = torch.from_numpy(np.load(npz)["x_train"]).permute(0, 3, 1, 2)
    folder = tmp_path / "queries"
    folder.mkdir()
    for i in (5, 42):
        Image.fromarray(x[i].permute(1, 2, 0).numpy()).save(folder / f"q{i:03d}.png")
    sup = tmp_path / "sup.pt"  # trained on --data since it does not exist yet
    assert run("--data", npz, "--backbone", f"supervised:{sup}", "--query", folder, "--k", 3,
               "--out", tmp_path / "r", "--restrict", "predicted", "--epochs", 1, "--cache", "none") == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    for q in report["queries"]:  # neighbours only from the class the trained classifier predicts
        assert set(q["neighbour_labels"]) == {q["restricted_to_class"]}
    assert run("--data", npz, "--backbone", "pixels", "--query", folder, "--k", 3,
               "--out", tmp_path / "r2", "--cache", "none") == 0
    report = json.loads((tmp_path / "r2" / "report.json").read_text())
    assert [q["neighbours"][0] for q in report["queries"]] == [5, 42]


@pytest.mark.parametrize("args,match", [
    (["--k", 81], "k: 81 neighbours requested but the training set holds 80"),
    (["--query", "test:7-9"], "query: selection '7-9' is empty or outside 0..7"),
    (["--backbone", "resnet"], "backbone: expected one of"),
    (["--backbone", "torchvision:resnet18:{bad}"], "backbone: cannot read weights file"),
    (["--backbone", "simclr:{bad}"], "backbone: cannot read weights file"),
    (["--restrict", "predicted"], "restrict: 'predicted' needs --classifier"),
    (["--poison", "nosuch"], "nosuch"),
])
def test_bad_arguments_are_named(npz, tmp_path, capsys, args, match):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not weights")
    base = {"--data": npz, "--backbone": "pixels", "--query": "test:0", "--k": 3, "--out": tmp_path / "o"}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = str(value).format(bad=bad)
    argv = [str(v) for kv in base.items() for v in kv]
    assert run(*argv) == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_query_of_another_size_and_outputs_over_inputs_are_refused(npz, tmp_path, capsys):
    folder = tmp_path / "small"
    folder.mkdir()
    Image.new("RGB", (16, 16)).save(folder / "a.png")
    assert run("--data", npz, "--backbone", "pixels", "--query", folder, "--out", tmp_path / "o") == 2
    assert "query: images of shape (3, 16, 16) differ from the training images' (3, 32, 32)" in capsys.readouterr().err
    assert run("--data", npz, "--backbone", "pixels", "--query", "test:0", "--k", 2, "--out", tmp_path) == 2
    assert "would overwrite, contain or sit inside the input" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep")
    assert run("--data", npz, "--backbone", "pixels", "--query", "test:0", "--k", 2, "--out", tmp_path / "full") == 2
    assert "pass --force" in capsys.readouterr().err
    assert (tmp_path / "full" / "x").read_text() == "keep"
