"""`poisonkit poison`: round trips (the written copy equals the transforms applied in
memory), manifest contents, refusal to overwrite the source, bad input."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from PIL import Image

from poisonkit import cli
from poisonkit.data import load_npz, synthetic_images
from poisonkit.poisons.ar import ARCoefficients, detect
from poisonkit.poisons.export import key_hash, poison_dataset
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
    out = poison_dataset(small_npz, tmp_path / "blur", method="classwise-blur", seed=0,
                     progress=False)
    src = load_npz(small_npz)
    expected, _ = ClasswiseBlur(10, seed=0)(src["x_train"], src["y_train"])
    assert torch.equal(load_npz(out)["x_train"], expected)


def test_refuses_to_overwrite_source(small_npz):
    with pytest.raises(ValueError, match="overwrite or sit inside the source"):
        poison_dataset(small_npz, small_npz.parent, progress=False)
    with pytest.raises(ValueError, match="overwrite or sit inside the source"):
        poison_dataset(small_npz, small_npz.parent, force=True, progress=False)
    assert load_npz(small_npz)["x_train"].shape == (40, 3, 32, 32)


def test_refuses_existing_output_unless_forced(small_npz, tmp_path):
    out_dir = tmp_path / "out"
    poison_dataset(small_npz, out_dir, method="classwise-blur", progress=False)
    with pytest.raises(FileExistsError, match="--force"):
        poison_dataset(small_npz, out_dir, method="classwise-blur", progress=False)
    poison_dataset(small_npz, out_dir, method="classwise-blur", force=True, progress=False)


def test_bad_input(small_npz, tmp_path):
    with pytest.raises(ValueError, match="method"):
        poison_dataset(small_npz, tmp_path / "o", method="jpeg")
    with pytest.raises(FileNotFoundError):
        poison_dataset(tmp_path / "missing.npz", tmp_path / "o")
    with pytest.raises(ValueError, match="only be written as 'png'"):
        poison_dataset(small_npz.parent, tmp_path / "o", fmt="npz")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="expected an .npz file"):
        poison_dataset(tmp_path / "notes.txt", tmp_path / "o")
    with pytest.raises(ValueError, match="format"):
        poison_dataset(small_npz, tmp_path / "o", fmt="jpeg")
    with pytest.raises(SystemExit):
        cli.main(["poison", "--method", "ar", "--data", str(small_npz)])
    with pytest.raises(FileNotFoundError):
        poison_dataset(small_npz, tmp_path / "o", coefficients=str(tmp_path / "none.pt"))


def _read_png(path):
    return torch.from_numpy(np.array(Image.open(path))).permute(2, 0, 1)


def test_npz_to_png_image_folder(small_npz, tmp_path):
    out = poison_dataset(small_npz, tmp_path / "png", fmt="png", key=9, progress=False)
    src = load_npz(small_npz)
    coeffs = ARCoefficients.load(tmp_path / "png" / "ar_coefficients.pt")
    expected, _ = ARPoison(coeffs, key=9)(src["x_train"], src["y_train"], torch.arange(40))
    for i in (0, 17, 39):
        label = int(src["y_train"][i])
        assert torch.equal(_read_png(out / "train" / str(label) / f"{i:07d}.png"), expected[i])
    assert torch.equal(_read_png(out / "test" / str(int(src["y_test"][3])) / "0000003.png"),
                       src["x_test"][3])
    assert len(list(out.rglob("*.png"))) == 48
    assert not (tmp_path / "png" / "small.tmp").exists()


def test_image_folder_round_trip_and_refusals(tmp_path):
    x, _ = synthetic_images(6, 40, seed=1)
    root = tmp_path / "folder"
    for i in range(6):  # two classes, two image sizes
        image = x[i] if i % 2 else x[i][:, :24, :32]
        (root / f"class{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(root / f"class{i % 2}" / f"im{i}.png")
    out = poison_dataset(root, tmp_path / "out", method="ar", key=3, progress=False)
    coeffs = ARCoefficients.load(tmp_path / "out" / "ar_coefficients.pt")
    from torchvision.datasets import ImageFolder
    samples = ImageFolder(str(root)).samples
    poison = ARPoison(coeffs, key=3)
    for index, (path, label) in enumerate(samples):
        rel = Path(path).relative_to(root)
        expected, _ = poison(_read_png(path), label, index)
        assert torch.equal(_read_png(out / rel), expected)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["format"] == "png" and manifest["counts"] == {"train": 6}
    with pytest.raises(ValueError, match="overwrite or sit inside the source"):
        poison_dataset(root, root / "inside", progress=False)
    with pytest.raises(ValueError, match="overwrite or sit inside the source"):
        poison_dataset(root, tmp_path, progress=False, force=True)
    poison_dataset(root, tmp_path / "out", method="classwise-blur", force=True, progress=False)
    assert len(list(out.rglob("*.png"))) == 6 and not list(tmp_path.glob("out/*.old"))


def test_crafted_poison_export_keeps_its_checkpoint_private(small_npz, tmp_path):
    out_dir, state = tmp_path / "em", tmp_path / "private" / "em.pt"
    options = f"steps=1,train_steps=1,max_iterations=1,state={state}"
    assert cli.main(["poison", "--method", "em", "--data", str(small_npz), "--out", str(out_dir),
                     "--key", "99", "--options", options]) == 0
    src, out = load_npz(small_npz), load_npz(out_dir / "small.npz")
    assert (out["x_train"].int() - src["x_train"].int()).abs().max() <= 8   # L-inf 8/255
    assert not torch.equal(out["x_train"], src["x_train"])
    assert state.exists() and sorted(p.name for p in out_dir.iterdir()) == ["manifest.json",
                                                                           "small.npz"]
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert manifest["parameters"] == {"options": {"steps": 1, "train_steps": 1, "max_iterations": 1},
                                      "key_sha256": key_hash(99)}
    with pytest.raises(ValueError, match="state=.* inside the published folder"):
        poison_dataset(small_npz, tmp_path / "em2", method="em", progress=False,
                       options=f"steps=1,state={tmp_path / 'em2' / 'em.pt'}")
    with pytest.raises(ValueError, match="bad parameters"):
        poison_dataset(small_npz, tmp_path / "em3", method="tap", options="nosuch=1")
    assert not (tmp_path / "em2").exists() and not (tmp_path / "em3").exists()
