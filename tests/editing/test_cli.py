"""protect-edit and eval-editing end to end on a tiny saved VAE and 16x16 real crops:
outputs, resume, and bad input refused before any work."""
import json

import numpy as np
import pytest

from poisonkit.cli import main
from tests.editing.conftest import make_tiny_vae


@pytest.fixture(scope="module")
def setup(tmp_path_factory, cifar):
    root = tmp_path_factory.mktemp("editing_cli")
    make_tiny_vae(seed=2).save_pretrained(root / "vae")
    crop = lambda x: x[:, :, :16, :16].permute(0, 2, 3, 1).numpy()
    np.savez(root / "data.npz", x_train=crop(cifar["x_train"][:8]), y_train=cifar["y_train"][:8].numpy(),
             x_test=crop(cifar["x_test"][:6]), y_test=cifar["y_test"][:6].numpy())
    return root


def _protect(root, out, *extra):
    return main(["protect-edit", "--data", str(root / "data.npz"), "--vae", str(root / "vae"),
                 "--out", str(out), "--iters", "4", "--batch-size", "4", "--device", "cpu", *extra])


def test_protect_then_evaluate(setup, capsys):
    out = setup / "prot"
    assert _protect(setup, out) == 0
    record = json.loads((out / "protect.json").read_text())
    assert record["count"] == 6 and record["eps"] == 0.06
    assert record["mean_latent_distance_to_target"]["end"] < record["mean_latent_distance_to_target"]["start"]
    with np.load(out / "protected.npz") as f:
        assert f["protected"].shape == (6, 16, 16, 3)
        assert np.abs(f["protected"].astype(int) - f["clean"].astype(int)).max() <= 0.06 * 127.5
    # Resume: the finished batches are reused, the result is the same.
    before = (out / "protected.npz").read_bytes()
    assert _protect(setup, out, "--resume") == 0
    assert (out / "protected.npz").read_bytes() == before

    ev = setup / "eval"
    args = ["eval-editing", "--protected", str(out), "--out", str(ev), "--device", "cpu",
            "--purify", "jpeg:90", "--purify", "jpeg:20", "--purify", "sharpen+lowpass:0.5",
            "--grid", "jpeg:20"]
    assert main(args) == 0
    report = json.loads((ev / "editing.json").read_text())
    assert list(report["results"]) == ["none", "jpeg:90", "jpeg:20", "sharpen+lowpass:0.5"]
    none = report["results"]["none"]
    assert none["remaining"] == pytest.approx(1.0)
    assert "not measured" in report["edit_similarity"]
    for name in ("editing.md", "editing.png", "editing_grid.png"):
        assert (ev / name).stat().st_size > 0
    assert "| jpeg:20 |" in (ev / "editing.md").read_text()
    assert main(args) == 2  # a non-empty --out needs --resume or --force
    assert "not empty" in capsys.readouterr().err
    assert main(args + ["--resume"]) == 0
    assert json.loads((ev / "editing.json").read_text())["results"] == report["results"]


@pytest.mark.parametrize("extra, match", [
    (["--eps", "0"], "eps: expected a positive"),
    (["--eps", "nan"], "eps: expected a positive"),
    (["--vae", "/nonexistent/vae"], "vae: no such folder"),
])
def test_bad_protect_input(setup, capsys, extra, match):
    assert _protect(setup, setup / "bad", *extra) == 2
    assert match in capsys.readouterr().err
    assert not (setup / "bad" / "protected.npz").exists()


def test_bad_eval_input(setup, capsys):
    assert main(["eval-editing", "--protected", str(setup / "nothing"), "--purify", "jpeg:5"]) == 2
    assert "protect-edit" in capsys.readouterr().err
    assert main(["eval-editing", "--protected", str(setup), "--purify", "blur"]) == 2
    assert "unknown 'blur'" in capsys.readouterr().err


def test_stand_in_refuses_unfit_images_before_training(tmp_path, monkeypatch, capsys, cifar):
    import numpy as np
    from poisonkit.editing import vae as vae_module
    monkeypatch.setenv("POISONKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(vae_module, "train_tiny_vae", lambda *a, **k: pytest.fail("trained"))
    gray = lambda x: x[:, :1, :15, :15].permute(0, 2, 3, 1).numpy()  # 1 channel, odd size
    np.savez(tmp_path / "gray.npz", x_train=gray(cifar["x_train"][:4]), y_train=np.zeros(4, np.int64),
             x_test=gray(cifar["x_test"][:4]), y_test=np.zeros(4, np.int64))
    assert main(["protect-edit", "--data", str(tmp_path / "gray.npz"), "--out", str(tmp_path / "o")]) == 2
    assert "the VAE takes 3-channel images, got 1" in capsys.readouterr().err
