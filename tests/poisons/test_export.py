"""`poisonkit poison`: round trips (the written copy equals the transforms applied in
memory), manifest contents, refusal to overwrite the source, bad input."""
import json

import numpy as np
import pytest
import torch

from poisonkit import cli
from poisonkit.data import load_npz, synthetic_images
from poisonkit.poisons.ar import ARCoefficients, detect
from poisonkit.poisons.export import key_hash, poison_npz
from poisonkit.transforms import ARPoison, ClasswiseBlur


@pytest.fixture
def small_npz(tmp_path):
    x, y = synthetic_images(40, 32, seed=3)
    path = tmp_path / "src" / "small.npz"
    path.parent.mkdir()
    nhwc = x.permute(0, 2, 3, 1).numpy()
    np.savez(path, x_train=nhwc, y_train=y.numpy(), x_test=nhwc[:8], y_test=y[:8].numpy())
    return path


def test_ar_round_trip_through_cli(small_npz, tmp_path):
    out_dir = tmp_path / "out"
    assert cli.main(["poison", "--method", "ar", "--data", str(small_npz), "--out", str(out_dir),
                     "--key", "1234", "--batch-size", "16"]) == 0
    src, out = load_npz(small_npz), load_npz(out_dir / "small.npz")
    coeffs = ARCoefficients.load(out_dir / "ar_coefficients.pt")
    expected, _ = ARPoison(coeffs, key=1234)(src["x_train"], src["y_train"], torch.arange(40))
    assert torch.equal(out["x_train"], expected)
    assert torch.equal(out["y_train"], src["y_train"])
    assert torch.equal(out["x_test"], src["x_test"])  # the test split stays clean
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert manifest["method"] == "ar" and manifest["counts"] == {"train": 40, "test": 8}
    assert manifest["parameters"]["key_sha256"] == key_hash(1234)
    assert "1234" not in json.dumps(manifest)
    assert manifest["poisonkit_version"]
    assert not list(out_dir.glob("*.tmp"))
    # What the copy adds to each image is its class's AR perturbation (up to rounding and
    # clamping), so the detector recovers the labels from the difference.
    delta_applied = (out["x_train"].float() - src["x_train"].float()) / 255
    assert (detect(delta_applied, coeffs) == src["y_train"]).float().mean() >= 0.9


def test_classwise_blur_round_trip(small_npz, tmp_path):
    out = poison_npz(small_npz, tmp_path / "blur", method="classwise-blur", seed=0,
                     progress=False)
    src = load_npz(small_npz)
    expected, _ = ClasswiseBlur(10, seed=0)(src["x_train"], src["y_train"])
    assert torch.equal(load_npz(out)["x_train"], expected)


def test_refuses_to_overwrite_source(small_npz):
    with pytest.raises(ValueError, match="source dataset"):
        poison_npz(small_npz, small_npz.parent, progress=False)
    with pytest.raises(ValueError, match="source dataset"):
        poison_npz(small_npz, small_npz.parent, force=True, progress=False)
    assert load_npz(small_npz)["x_train"].shape == (40, 3, 32, 32)


def test_refuses_existing_output_unless_forced(small_npz, tmp_path):
    out_dir = tmp_path / "out"
    poison_npz(small_npz, out_dir, method="classwise-blur", progress=False)
    with pytest.raises(FileExistsError, match="--force"):
        poison_npz(small_npz, out_dir, method="classwise-blur", progress=False)
    poison_npz(small_npz, out_dir, method="classwise-blur", force=True, progress=False)


def test_bad_input(small_npz, tmp_path):
    with pytest.raises(ValueError, match="method"):
        poison_npz(small_npz, tmp_path / "o", method="jpeg")
    with pytest.raises(FileNotFoundError):
        poison_npz(tmp_path / "missing.npz", tmp_path / "o")
    with pytest.raises(ValueError, match="folder"):
        poison_npz(small_npz.parent, tmp_path / "o")
    with pytest.raises(SystemExit):
        cli.main(["poison", "--method", "ar", "--data", str(small_npz)])
    with pytest.raises(FileNotFoundError):
        poison_npz(small_npz, tmp_path / "o", coefficients=str(tmp_path / "none.pt"))
