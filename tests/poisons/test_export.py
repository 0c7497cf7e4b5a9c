"""`poisonkit poison`: round trips (the written copy equals the transforms applied in
memory with the key file's secrets), the public manifest and the private key file, the
ImageFolder layouts, and refusals before any work (issue 14)."""
import json
import os
import stat
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from poisonkit import cli, keys
from poisonkit.data import load_npz, synthetic_images
from poisonkit.poisons.ar import ARCoefficients, detect
from poisonkit.poisons.export import default_key_file, poison_dataset
from poisonkit.transforms import ARPoison, ClasswiseBlur


def write_npz(path, x, y, x_test=None, y_test=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    nhwc = x.permute(0, 2, 3, 1).numpy()
    x_test = nhwc[:8] if x_test is None else x_test.permute(0, 2, 3, 1).numpy()
    np.savez(path, x_train=nhwc, y_train=np.asarray(y),
             x_test=x_test, y_test=np.asarray(y[:8] if y_test is None else y_test))
    return path


@pytest.fixture
def small_npz(tmp_path):
    x, y = synthetic_images(40, 32, seed=3)
    return write_npz(tmp_path / "src" / "small.npz", x, y.numpy())


@pytest.fixture(scope="module")
def coefficients(tmp_path_factory):
    """A stable coefficient set saved to a file, instant (sampling with the reference's
    acceptance tests takes 20-60 s here; tests/poisons/test_export_secrets.py does it)."""
    raw = torch.randn(10, 3, 3, 3, generator=torch.Generator().manual_seed(0))
    raw[..., 2, 2] = 0
    path = tmp_path_factory.mktemp("coeffs") / "coeffs.pt"
    return str(ARCoefficients(0.9 * raw / raw.abs().sum((-2, -1), keepdim=True)).save(path))


def ar_from_key_file(path):
    record = keys.read_key_file(path)
    coeffs = torch.tensor(record["secrets"]["ar_coefficients"])
    params = record["parameters"]
    return ARPoison(coeffs, eps=params["eps"], p=params["p"], crop=params["crop"],
                    key=keys.philox_key(record["key"]))


def test_ar_round_trip_through_cli(small_npz, tmp_path, coefficients):
    out_dir = tmp_path / "out"
    assert cli.main(["poison", "--method", "ar", "--data", str(small_npz), "--out", str(out_dir),
                     "--key", "1234", "--batch-size", "16", "--coefficients", coefficients]) == 0
    src, out = load_npz(small_npz), load_npz(out_dir / "small.npz")
    key_file = tmp_path / "out.key.json"
    record = keys.read_key_file(key_file)
    assert record["key"] == 1234
    expected = ARPoison(torch.tensor(record["secrets"]["ar_coefficients"]), key=1234).poison_batch(
        src["x_train"], src["y_train"], torch.arange(40))
    assert torch.equal(out["x_train"], expected)
    assert torch.equal(out["y_train"], src["y_train"])
    assert torch.equal(out["x_test"], src["x_test"])  # the test split stays clean
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert manifest["method"] == "ar" and manifest["counts"] == {"train": 40, "test": 8}
    assert keys.matches(1234, manifest["key_check"]) and not keys.matches(1235, manifest["key_check"])
    assert manifest["dataset_id"] == record["dataset_id"]
    assert "1234" not in json.dumps(manifest) and manifest["poisonkit_version"]
    assert sorted(p.name for p in out_dir.iterdir()) == ["manifest.json", "small.npz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "out.key.json", "src"]
    # What the copy adds to each image is its class's AR perturbation (up to rounding and
    # clamping), so the detector recovers the labels from the difference.
    delta_applied = (out["x_train"].float() - src["x_train"].float()) / 255
    coeffs = torch.tensor(record["secrets"]["ar_coefficients"])
    assert (detect(delta_applied, coeffs) == src["y_train"]).float().mean() >= 0.9


def test_default_key_is_random_and_file_private(small_npz, tmp_path):
    paths = [poison_dataset(small_npz, tmp_path / name, method="classwise-blur", progress=False)
             for name in ("a", "b")]
    records = [keys.read_key_file(default_key_file(tmp_path / n)) for n in ("a", "b")]
    assert records[0]["key"] != records[1]["key"] and min(r["key"] for r in records) > 0
    assert records[0]["key"].bit_length() > 64  # 128 random bits (fails with odds 2^-64)
    assert stat.S_IMODE(os.stat(default_key_file(tmp_path / "a")).st_mode) == 0o600
    # Different secret kernels per key, each reproduced by the key file's kernels.
    src = load_npz(small_npz)
    for path, record in zip(paths, records):
        blur = ClasswiseBlur(10)
        blur.kernels = torch.tensor(record["secrets"]["blur_kernels"])
        assert torch.equal(load_npz(path)["x_train"], blur(src["x_train"], src["y_train"])[0])
    assert records[0]["secrets"]["blur_kernels"] != records[1]["secrets"]["blur_kernels"]


def test_classwise_blur_seed_0_is_the_reference(small_npz, tmp_path):
    with pytest.warns(UserWarning, match="published kernels"):
        out = poison_dataset(small_npz, tmp_path / "blur", method="classwise-blur", seed=0,
                             progress=False)
    src = load_npz(small_npz)
    expected = ClasswiseBlur(10, seed=0).poison_batch(src["x_train"], src["y_train"])
    assert torch.equal(load_npz(out)["x_train"], expected)


def test_key_file_placement(small_npz, tmp_path):
    with pytest.raises(ValueError, match="inside the published folder"):
        poison_dataset(small_npz, tmp_path / "o", key_file=tmp_path / "o" / "k.json")
    with pytest.raises(ValueError, match="key_file"):
        poison_dataset(small_npz, tmp_path / "o", key_file=small_npz)
    custom = tmp_path / "private" / "k.json"
    poison_dataset(small_npz, tmp_path / "o", method="classwise-blur", key_file=custom,
                   progress=False)
    assert keys.read_key_file(custom)["destination"] == str((tmp_path / "o").resolve())
    with pytest.raises(FileExistsError, match="key_file"):  # another copy's key is kept
        poison_dataset(small_npz, tmp_path / "p", method="classwise-blur", key_file=custom)


def test_orphan_key_file_of_a_killed_run_is_replaced(small_npz, tmp_path):
    """A run killed after writing its key file but before publishing leaves a key file
    whose dataset was never published; the next run may replace it without --force."""
    out_dir = (tmp_path / "o").resolve()
    keys.write_key_file(default_key_file(out_dir), {"key": 5, "dataset_id": "x" * 32,
                                                    "destination": str(out_dir)})
    poison_dataset(small_npz, out_dir, method="classwise-blur", progress=False)
    assert keys.read_key_file(default_key_file(out_dir))["key"] != 5


def test_refuses_to_overwrite_source(small_npz):
    for force in (False, True):
        with pytest.raises(ValueError, match="overwrite, contain or sit inside the input"):
            poison_dataset(small_npz, small_npz.parent, force=force, progress=False)
        with pytest.raises(ValueError, match="overwrite, contain or sit inside the input"):
            poison_dataset(small_npz, small_npz.parent.parent, force=force, progress=False)
    assert load_npz(small_npz)["x_train"].shape == (40, 3, 32, 32)


def test_refuses_existing_output_unless_forced(small_npz, tmp_path):
    out_dir = tmp_path / "out"
    poison_dataset(small_npz, out_dir, method="classwise-blur", progress=False)
    with pytest.raises(FileExistsError, match="--force"):
        poison_dataset(small_npz, out_dir, method="classwise-blur", progress=False)
    poison_dataset(small_npz, out_dir, method="classwise-blur", force=True, progress=False)
    (tmp_path / "file").write_text("keep me")
    with pytest.raises(NotADirectoryError, match="existing file"):
        poison_dataset(small_npz, tmp_path / "file", force=True, progress=False)
    assert (tmp_path / "file").read_text() == "keep me"
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not a poisoned copy"):
        poison_dataset(small_npz, tmp_path / "mine", force=True, progress=False)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


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
    with pytest.raises(ValueError, match="options: method 'classwise-blur' takes"):
        poison_dataset(small_npz, tmp_path / "o", method="classwise-blur", eps=2.0)
    for key in (-1, 1 << 128, 1.5):
        with pytest.raises((ValueError, TypeError), match="key"):
            poison_dataset(small_npz, tmp_path / "o", key=key)
    with pytest.raises(SystemExit):
        cli.main(["poison", "--method", "ar", "--data", str(small_npz)])
    assert cli.main(["poison", "--method", "ar", "--data", str(small_npz), "--out",
                     str(tmp_path / "o"), "--key", "-1"]) == 2
    with pytest.raises(FileNotFoundError):
        poison_dataset(small_npz, tmp_path / "o", coefficients=str(tmp_path / "none.pt"))
    assert not (tmp_path / "o").exists() and not default_key_file(tmp_path / "o").exists()


@pytest.mark.parametrize("y_train, y_test, num_classes, match", [
    (np.arange(40) % 10 - 1, None, None, "y_train: class indices must be >= 0"),
    ((np.arange(40) % 10).astype(np.float32), None, None, "integer class labels"),
    (np.where(np.arange(40) == 5, 1000, np.arange(40) % 10), None, None, "only 11 distinct"),
    (np.arange(40) % 10, None, 5, r"in \[0, 5\) \(num_classes\)"),
    (np.arange(40) % 9, np.full(8, 9), None, r"y_test: class indices must be in \[0, 9\)"),
    (np.arange(40) % 9, np.full(8, 9), 10, r"classes \[9\] have no training image"),
])
def test_labels_checked_before_any_work(tmp_path, y_train, y_test, num_classes, match):
    x, _ = synthetic_images(40, 32, seed=3)
    data = write_npz(tmp_path / "bad.npz", x, y_train, y_test=y_test)
    with pytest.raises(ValueError, match=match):
        poison_dataset(data, tmp_path / "o", method="classwise-blur", num_classes=num_classes,
                       progress=False)
    assert not (tmp_path / "o").exists() and not default_key_file(tmp_path / "o").exists()


def test_huge_label_rejected_fast_with_bounded_memory(tmp_path):
    """One label of 10^12 used to make a list of 10^12 class names (12 GB)."""
    x, _ = synthetic_images(40, 32, seed=3)
    data = write_npz(tmp_path / "bad.npz", x, np.where(np.arange(40) == 7, 10 ** 12, np.arange(40) % 10))
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(ValueError, match="labels run up to 1000000000000"):
        poison_dataset(data, tmp_path / "o", method="ar", progress=False)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert seconds < 1.0 and peak < 50 << 20, (seconds, peak)
    with pytest.raises(ValueError, match=r"in \[0, 10\)"):
        poison_dataset(data, tmp_path / "o", num_classes=10, progress=False)


def _read_png(path):
    return torch.from_numpy(np.array(Image.open(path))).permute(2, 0, 1)


def test_npz_to_png_image_folder(small_npz, tmp_path, coefficients):
    out = poison_dataset(small_npz, tmp_path / "png", fmt="png", key=9,
                         coefficients=coefficients, progress=False)
    src = load_npz(small_npz)
    expected = ar_from_key_file(default_key_file(tmp_path / "png")).poison_batch(
        src["x_train"], src["y_train"], torch.arange(40))
    for i in (0, 17, 39):
        label = int(src["y_train"][i])
        assert torch.equal(_read_png(out / "train" / str(label) / f"{i:07d}.png"), expected[i])
    assert torch.equal(_read_png(out / "test" / str(int(src["y_test"][3])) / "0000003.png"),
                       src["x_test"][3])
    assert len(list(out.rglob("*.png"))) == 48


def _save(image, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(path)


def test_image_folder_round_trip_and_refusals(tmp_path, coefficients):
    x, _ = synthetic_images(6, 40, seed=1)
    root = tmp_path / "folder"
    for i in range(6):  # two classes, two image sizes
        _save(x[i] if i % 2 else x[i][:, :24, :32], root / f"class{i % 2}" / f"im{i}.png")
    out = poison_dataset(root, tmp_path / "out", method="ar", key=3, coefficients=coefficients,
                         progress=False)
    from torchvision.datasets import ImageFolder
    samples = ImageFolder(str(root)).samples
    poison = ar_from_key_file(default_key_file(tmp_path / "out"))
    for index, (path, label) in enumerate(samples):
        rel = Path(path).relative_to(root)
        expected = poison.poison_batch(_read_png(path), label, index)
        assert torch.equal(_read_png(out / rel), expected)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["format"] == "png" and manifest["counts"] == {"train": 6}
    assert manifest["layout"] == "classes"
    with pytest.raises(ValueError, match="overwrite, contain or sit inside the input"):
        poison_dataset(root, root / "inside", progress=False)
    with pytest.raises(ValueError, match="overwrite, contain or sit inside the input"):
        poison_dataset(root, tmp_path, progress=False, force=True)
    poison_dataset(root, tmp_path / "out", method="classwise-blur", force=True, progress=False)
    assert len(list(out.rglob("*.png"))) == 6 and not list(tmp_path.glob(".out*"))


def test_split_root_keeps_its_layout(tmp_path):
    """A root with train/ and test/ used to be read as two classes: the test images were
    poisoned as a class 'test' and 9 of 90 PNGs were written while the manifest said 90."""
    x, _ = synthetic_images(18, 16, seed=2)
    root = tmp_path / "data"
    for i in range(12):
        _save(x[i], root / "train" / ("cat", "dog", "eel")[i % 3] / f"t{i}.png")
    for i in range(12, 18):  # the test split lacks class 'eel'; labels follow train's
        _save(x[i], root / "test" / ("cat", "dog")[i % 2] / f"v{i}.png")
    out = poison_dataset(root, tmp_path / "out", method="classwise-blur", progress=False)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["layout"] == "splits" and manifest["counts"] == {"train": 12, "test": 6}
    assert manifest["num_classes"] == 3
    assert len(list((out / "train").rglob("*.png"))) == 12
    for i in range(12, 18):  # test images copied unchanged into the same layout
        name = ("cat", "dog")[i % 2]
        assert torch.equal(_read_png(out / "test" / name / f"v{i}.png"), x[i])
    record = keys.read_key_file(default_key_file(tmp_path / "out"))
    blur = ClasswiseBlur(3)
    blur.kernels = torch.tensor(record["secrets"]["blur_kernels"])
    assert torch.equal(_read_png(out / "train" / "eel" / "t2.png"), blur(x[2], 2)[0])
    _save(x[0], root / "test" / "fox" / "f.png")
    with pytest.raises(ValueError, match=r"class folders \['fox'\] that the training split lacks"):
        poison_dataset(root, tmp_path / "o2", progress=False)
    (root / "test" / "fox" / "f.png").unlink()
    _save(x[0], root / "extra" / "a.png")
    with pytest.raises(ValueError, match="beside other folders"):
        poison_dataset(root, tmp_path / "o2", progress=False)


def test_stem_collisions_are_refused_with_their_list(tmp_path):
    x, _ = synthetic_images(4, 16, seed=2)
    root = tmp_path / "data"
    _save(x[0], root / "a" / "im.png")
    _save(x[1], root / "a" / "im.bmp")
    _save(x[2], root / "b" / "other.png")
    with pytest.raises(ValueError, match=r"a/im.(bmp|png), a/im.(png|bmp)"):
        poison_dataset(root, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_counts_are_checked_against_the_files_written(tmp_path, monkeypatch):
    """A PNG that silently fails to appear (once: a deleted staging folder) is caught before
    anything is published."""
    from poisonkit.poisons import export
    x, _ = synthetic_images(6, 16, seed=2)
    root = tmp_path / "data"
    for i in range(6):
        _save(x[i], root / f"c{i % 2}" / f"im{i}.png")
    real = export._save_png
    monkeypatch.setattr(export, "_save_png",
                        lambda image, path: None if path.name == "im3.png" else real(image, path))
    with pytest.raises(RuntimeError, match=r"wrote \{'train': 5\}.*nothing was published"):
        poison_dataset(root, tmp_path / "out", method="classwise-blur", progress=False)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))
    assert not default_key_file(tmp_path / "out").exists()


def test_crafted_poison_export_keeps_its_checkpoint_private(small_npz, tmp_path):
    out_dir, state = tmp_path / "em", tmp_path / "private" / "em.pt"
    assert cli.main(["poison", "--method", "em", "--data", str(small_npz), "--out", str(out_dir),
                     "--steps", "1", "--state", str(state)]) == 0
    src, out = load_npz(small_npz), load_npz(out_dir / "small.npz")
    assert 0 < (out["x_train"].int() - src["x_train"].int()).abs().max() <= 8   # L-inf 8/255
    assert state.exists() and sorted(p.name for p in out_dir.iterdir()) == ["manifest.json",
                                                                           "small.npz"]
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert manifest["parameters"] == {"steps": 1} and "em.pt" not in json.dumps(manifest)
    with pytest.raises(ValueError, match="would overwrite, contain or sit inside"):
        poison_dataset(small_npz, tmp_path / "em2", method="em", progress=False,
                       state=str(tmp_path / "em2" / "em.pt"))
    with pytest.raises(ValueError, match="takes"):
        poison_dataset(small_npz, tmp_path / "em3", method="tap", progress=False, nosuch=1)
    assert not (tmp_path / "em2").exists() and not (tmp_path / "em3").exists()
