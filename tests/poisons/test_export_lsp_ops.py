"""`poisonkit poison --method lsp|ops`: the written copy equals the poison applied in
memory; the manifest holds no key and no OPS pixels (those go to the key file); a bad LSP
setting is refused before anything is written."""
import json

import pytest
import torch

from poisonkit import cli, keys
from poisonkit.data import load_npz
from poisonkit.poisons.export import poison_dataset
from poisonkit.poisons.lsp import LSPPoison
from poisonkit.poisons.one_pixel import OnePixelShortcut
from tests.poisons.test_export import small_npz  # noqa: F401  (fixture)


def test_lsp_round_trip_through_cli(small_npz, tmp_path):  # noqa: F811
    out_dir = tmp_path / "lsp"
    assert cli.main(["poison", "--method", "lsp", "--data", str(small_npz), "--out",
                     str(out_dir), "--key", "4321", "--batch-size", "16"]) == 0
    src, out = load_npz(small_npz), load_npz(out_dir / "small.npz")
    record = keys.read_key_file(tmp_path / "lsp.key.json")
    expected = LSPPoison(10, key=keys.philox_key(record["key"])).poison_batch(
        src["x_train"], src["y_train"], torch.arange(40))
    assert torch.equal(out["x_train"], expected) and torch.equal(out["x_test"], src["x_test"])
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert manifest["method"] == "lsp" and manifest["parameters"]["patch"] == 8
    assert manifest["parameters"]["eps"] == pytest.approx(6 / 255)
    assert "4321" not in json.dumps(manifest)


def test_ops_round_trip_keeps_the_pixels_private(small_npz, tmp_path):  # noqa: F811
    out = poison_dataset(small_npz, tmp_path / "ops", method="ops", batch_size=16, progress=False)
    src = load_npz(small_npz)
    poison = OnePixelShortcut.search(src["x_train"], src["y_train"], 10)
    expected = poison.poison_batch(src["x_train"], src["y_train"], torch.arange(40))
    assert torch.equal(load_npz(out)["x_train"], expected)
    manifest = json.loads((tmp_path / "ops" / "manifest.json").read_text())
    assert manifest["method"] == "ops" and manifest["parameters"] == {}
    record = keys.read_key_file(tmp_path / "ops.key.json")
    assert record["secrets"]["ops_rows"] == poison.rows.tolist()


def test_lsp_bad_settings_leave_nothing(small_npz, tmp_path):  # noqa: F811
    with pytest.raises(ValueError, match="patch: expected a divisor of the image size 32x32"):
        poison_dataset(small_npz, tmp_path / "bad", method="lsp", patch=5, progress=False)
    with pytest.raises(ValueError, match="eps"):
        poison_dataset(small_npz, tmp_path / "bad", method="lsp", eps=float("nan"), progress=False)
    assert not list(tmp_path.glob("bad*")) and not list(tmp_path.glob(".bad*"))
