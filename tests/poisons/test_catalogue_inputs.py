"""Every poison of the catalogue on the one Poison protocol: bad input (ratio outside
[0, 1], eps <= 0 or NaN, a class with no images) is an error naming the argument before
any work; EM/TAP take `ratio` like the others; `poisonkit poison --ratio` poisons the
key-derived subset and its manifest lists it (and nothing secret)."""
import json

import pytest
import torch

from poisonkit import cli, keys
from poisonkit.data import load_npz, synthetic_images
from poisonkit.poisons.base import Poison
from poisonkit.poisons.em import ErrorMinimizing
from poisonkit.poisons.export import poison_dataset
from poisonkit.poisons.lsp import LSPPoison
from poisonkit.poisons.one_pixel import OnePixelShortcut
from poisonkit.poisons.tap import TargetedAdversarial
from poisonkit.transforms import ARPoison, ClasswiseBlur
from tests.poisons.test_export import small_npz  # noqa: F401  (fixture)

TINY_EM = {"steps": 2, "train_steps": 1, "max_iterations": 1, "batch_size": 16, "progress": False}
TINY_TAP = {"steps": 2, "train_epochs": 1, "batch_size": 16, "progress": False}
PIXELS = (torch.tensor([0]), torch.tensor([0]), torch.ones(1, 3))
MAKERS = {
    "blur": lambda **kw: ClasswiseBlur(10, **kw),
    "ar": lambda **kw: ARPoison(10, **kw),
    "lsp": lambda **kw: LSPPoison(10, **kw),
    "ops": lambda **kw: OnePixelShortcut(*PIXELS, **kw),
    "em": lambda **kw: ErrorMinimizing(10, **TINY_EM, **kw),
    "em-class": lambda **kw: ErrorMinimizing(10, per_class=True, **TINY_EM, **kw),
    "tap": lambda **kw: TargetedAdversarial(10, **TINY_TAP, **kw),
}
WITH_EPS = ["ar", "lsp", "em", "em-class", "tap"]


@pytest.mark.parametrize("method", sorted(MAKERS))
@pytest.mark.parametrize("ratio", [-0.1, 1.5, float("nan")])
def test_ratio_outside_0_1_is_refused(method, ratio):
    with pytest.raises(ValueError, match="ratio"):
        MAKERS[method](ratio=ratio)


@pytest.mark.parametrize("method", WITH_EPS)
@pytest.mark.parametrize("eps", [0, -1.0, float("nan")])
def test_eps_must_be_positive(method, eps):
    with pytest.raises(ValueError, match="eps"):
        MAKERS[method](eps=eps)


def test_every_catalogue_poison_is_a_poison():
    assert all(isinstance(make(), Poison) for make in MAKERS.values())


def test_a_class_without_images_is_refused_by_the_dataset_poisons():
    x, y = synthetic_images(30, 8, seed=2)
    y = torch.where(y == 4, torch.zeros_like(y), y)
    with pytest.raises(ValueError, match=r"labels: classes \[4\] have no images"):
        OnePixelShortcut.search(x, y, 10)
    for method in ("em", "em-class", "tap"):
        with pytest.raises(ValueError, match=r"labels: classes \[4\] have no images"):
            MAKERS[method]().craft(x, y)


@pytest.mark.parametrize("method", ["em", "em-class", "tap"])
def test_crafted_poisons_poison_only_the_key_derived_subset(method):
    x, y = synthetic_images(40, 32, seed=4)
    full = MAKERS[method](key=9).craft(x, y)
    part = MAKERS[method](key=9, ratio=0.5).craft(x, y)
    assert torch.equal(full.delta, part.delta)   # crafted on every sample alike
    i = torch.arange(len(x))
    mask = part.poisoned_mask(i)
    assert 5 < int(mask.sum()) < 35
    out = part.poison_batch(x, y, i)
    assert torch.equal(out[~mask], x[~mask])
    assert torch.equal(out[mask], full.poison_batch(x, y, i)[mask])
    image, label, index = part(x[3], int(y[3]), 3)   # a v2 sample call, as the others
    assert torch.equal(image, out[3]) and label == int(y[3]) and index == 3


def test_cli_ratio_poisons_the_listed_subset(small_npz, tmp_path):  # noqa: F811
    out_dir = tmp_path / "lsp"
    assert cli.main(["poison", "--method", "lsp", "--data", str(small_npz), "--out",
                     str(out_dir), "--key", str(2**100 + 5), "--ratio", "0.5",
                     "--batch-size", "16"]) == 0
    src, out = load_npz(small_npz), load_npz(out_dir / "small.npz")
    manifest = json.loads((out_dir / "manifest.json").read_text())
    record = keys.read_key_file(tmp_path / "lsp.key.json")
    poison = LSPPoison(10, key=keys.philox_key(record["key"]), ratio=0.5)
    i = torch.arange(len(src["x_train"]))
    listed = torch.zeros(len(i), dtype=torch.bool)
    listed[manifest["poisoned_indices"]] = True
    changed = (out["x_train"] != src["x_train"]).flatten(1).any(1)
    assert manifest["ratio"] == 0.5 and 5 < int(listed.sum()) < 35
    assert torch.equal(changed, listed)
    assert torch.equal(out["x_train"], poison.poison_batch(src["x_train"], src["y_train"], i))
    assert str(record["key"]) not in json.dumps(manifest)


def test_cli_bad_ratio_writes_nothing(small_npz, tmp_path, capsys):  # noqa: F811
    out_dir = tmp_path / "lsp"
    assert cli.main(["poison", "--method", "lsp", "--data", str(small_npz), "--out",
                     str(out_dir), "--ratio", "1.5"]) == 2
    assert "ratio" in capsys.readouterr().err
    assert not out_dir.exists() and not (tmp_path / "lsp.key.json").exists()


def test_export_of_a_crafted_poison_takes_ratio(small_npz, tmp_path):  # noqa: F811
    state = tmp_path / "private" / "tap.pt"
    out = poison_dataset(small_npz, tmp_path / "tap", method="tap", steps=1, train_epochs=0,
                         state=str(state), ratio=0.5, batch_size=16, progress=False)
    src, written = load_npz(small_npz), load_npz(out)
    manifest = json.loads((tmp_path / "tap" / "manifest.json").read_text())
    listed = torch.zeros(len(src["x_train"]), dtype=torch.bool)
    listed[manifest["poisoned_indices"]] = True
    assert 5 < int(listed.sum()) < 35 and manifest["ratio"] == 0.5
    assert torch.equal(written["x_train"][~listed], src["x_train"][~listed])
    assert (written["x_train"][listed] != src["x_train"][listed]).flatten(1).any(1).all()
    assert state.exists() and "crafting_state" not in json.dumps(manifest)
