"""inspect_dataset / inspect_path end to end: the verdicts on real clean and poisoned
CIFAR-10 images, the report files, the CLI, and bad input."""
import json

import numpy as np
import PIL.Image
import pytest
import torch

from poisonkit.cli import main
from poisonkit.inspect import inspect_dataset, inspect_path, write_report
from poisonkit.transforms import ARPoison, ClasswiseBlur


def subset(cifar, per_class=200):
    idx = torch.cat([torch.nonzero(cifar["y_train"] == k)[:per_class, 0] for k in range(10)])
    return cifar["x_train"][idx], cifar["y_train"][idx]


def flags(report):
    return {k: s["verdict"]["flagged"] for k, s in report["signals"].items()}


def test_real_clean_is_not_flagged_and_blur_is_flagged_by_its_signals(cifar):
    x, y = subset(cifar)
    clean = inspect_dataset(x, y, progress=False)
    assert not clean["flagged"], flags(clean)
    blur = inspect_dataset(ClasswiseBlur()(x, y)[0], y, progress=False)
    f = flags(blur)
    assert f["linear_separability"] and f["spectral_profile"] and f["border"]
    assert blur["signals"]["linear_separability"]["verdict"]["defenses"]


def test_real_ar_poison_is_flagged_by_ar_predictability(cifar):
    x, y = subset(cifar)
    poisoned = ARPoison(10, eps=1.0)(x, y, torch.arange(len(y)))[0]  # L2 eps 1, crop 4
    report = inspect_dataset(poisoned, y, progress=False)
    f = flags(report)
    assert f["ar_predictability"] and not f["linear_separability"] and not f["border"]


def write_folder(root, images):
    for name, arrays in images.items():
        (root / name).mkdir(parents=True)
        for i, a in enumerate(arrays):
            PIL.Image.fromarray(a).save(root / name / f"{i}.png")


def test_cli_writes_json_markdown_and_plots_for_an_image_folder(tmp_path, capsys):
    rng = np.random.default_rng(0)
    write_folder(tmp_path / "data", {c: rng.integers(0, 256, (12, 16, 16, 3), dtype=np.uint8)
                                     for c in ("cat", "dog", "eel")})
    assert main(["inspect", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["schema"] == "poisonkit.inspect/1"
    assert report["data"]["class_names"] == ["cat", "dog", "eel"]
    assert report["data"]["images_per_class"] == [12, 12, 12]
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["ar.png", "border.png", "report.json", "report.md", "separability.png", "spectra.png"]
    assert "| Linear separability |" in capsys.readouterr().out


def test_classes_without_images_are_dropped_and_labels_kept(gen, tmp_path):
    x = (torch.rand(30, 3, 8, 8, generator=gen) * 255).to(torch.uint8)
    y = torch.tensor([1, 4] * 15)
    report = inspect_dataset(x, y, class_names=[str(i) for i in range(5)], progress=False)
    assert report["data"]["class_labels"] == [1, 4] and report["data"]["num_classes"] == 2
    paths = write_report(report, tmp_path)
    assert not list(tmp_path.glob("*.tmp")) and paths["json"].is_file()


@pytest.mark.parametrize("make, match", [
    (lambda g: (torch.zeros(10, 3, 8, 8, dtype=torch.uint8), torch.zeros(10, dtype=torch.int64)),
     "at least 2 classes"),
    (lambda g: (torch.full((4, 3, 8, 8), float("nan")), torch.tensor([0, 1, 0, 1])), "NaN"),
    (lambda g: (torch.zeros(4, 3, 4, 4, dtype=torch.uint8), torch.tensor([0, 1, 0, 1])), "at least 5x5"),
    (lambda g: (torch.zeros(4, 3, 8, 8, dtype=torch.int32), torch.tensor([0, 1, 0, 1])), "uint8"),
    (lambda g: (torch.zeros(4, 3, 8, 8, dtype=torch.uint8), torch.tensor([0.0, 1, 0, 1])), "labels"),
    (lambda g: (torch.zeros(4, 3, 8, 8, dtype=torch.uint8), torch.tensor([0, 1, 0])), "labels"),
    (lambda g: (torch.zeros(4, 3, 8, 8, dtype=torch.uint8), torch.tensor([0, -1, 0, 1])), "non-negative"),
])
def test_bad_tensors_are_rejected_with_a_message(gen, make, match):
    with pytest.raises(ValueError, match=match):
        inspect_dataset(*make(gen), progress=False)


def test_one_class_npz_is_an_error_from_the_cli(tmp_path, capsys):
    path = tmp_path / "one.npz"
    x = np.zeros((6, 8, 8, 3), np.uint8)
    np.savez(path, x_train=x, y_train=np.zeros(6, np.int64), x_test=x, y_test=np.zeros(6, np.int64))
    assert main(["inspect", "--data", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "at least 2 classes" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_mismatched_image_sizes_are_an_error_naming_files(tmp_path):
    write_folder(tmp_path, {"a": [np.zeros((8, 8, 3), np.uint8)], "b": [np.zeros((9, 8, 3), np.uint8)]})
    with pytest.raises(ValueError, match=r"differ in size: 8x8 .*a/0.png.*9x8 .*b/0.png"):
        inspect_path(tmp_path, progress=False)


def test_unreadable_file_is_an_error_naming_it(tmp_path, capsys):
    write_folder(tmp_path, {"a": [np.zeros((8, 8, 3), np.uint8)], "b": [np.zeros((8, 8, 3), np.uint8)]})
    (tmp_path / "b" / "broken.png").write_bytes(b"not a png")
    assert main(["inspect", "--data", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "cannot read image" in (err := capsys.readouterr().err) and "broken.png" in err


def test_missing_path_and_bad_npz(tmp_path, capsys):
    assert main(["inspect", "--data", str(tmp_path / "nope.npz")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    assert main(["inspect", "--data", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "o")]) == 2
    assert "not a readable dataset" in capsys.readouterr().err
