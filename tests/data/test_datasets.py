"""Datasets: .npz / ImageFolder / procedural sources, their errors, the poisoned
in-memory dataset and its loaders."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from poisonkit.data import datasets as pkdata
from poisonkit.data import (ImageDataset, PoisonedTensorDataset, load_dataset, make_loader,
                            synthetic_dataset, synthetic_images)


def _write_npz(path, n=20, m=10, classes=4, **override):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8),
              "y_train": np.arange(n) % classes, "x_test": rng.integers(0, 256, (m, 8, 8, 3), dtype=np.uint8),
              "y_test": np.arange(m) % classes}
    arrays.update(override)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return arrays


def test_npz_loads_as_nchw(tmp_path):
    arrays = _write_npz(tmp_path / "d.npz")
    d = load_dataset(tmp_path / "d.npz")
    assert d.x_train.shape == (20, 3, 8, 8) and d.x_train.dtype == torch.uint8
    assert torch.equal(d.x_train.permute(0, 2, 3, 1), torch.from_numpy(arrays["x_train"]))
    assert d.y_test.dtype == torch.int64 and d.num_classes == 4 and d.image_shape == (3, 8, 8)


def test_env_variable_names_the_dataset(tmp_path, monkeypatch):
    _write_npz(tmp_path / "d.npz")
    monkeypatch.setenv("POISONKIT_DATA", str(tmp_path / "d.npz"))
    assert len(load_dataset().x_train) == 20


def test_missing_dataset_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz does not exist"):
        load_dataset(tmp_path / "nope.npz")


@pytest.mark.parametrize("override, message", [
    ({"y_test": None}, "lacks arrays"),
    ({"x_train": np.zeros((20, 8, 8, 3), np.float32)}, "must be uint8"),
    ({"y_train": np.zeros(19, np.int64)}, "y_train must have shape"),
    ({"y_test": -np.ones(10, np.int64)}, "class indices"),
])
def test_malformed_npz_is_an_error(tmp_path, override, message):
    _write_npz(tmp_path / "d.npz", **override)
    with pytest.raises(ValueError, match=message):
        load_dataset(tmp_path / "d.npz")


def test_file_that_is_not_an_npz_is_an_error(tmp_path):
    (tmp_path / "d.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="not a readable dataset"):
        load_dataset(tmp_path / "d.npz")


def test_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    for split, count in (("train", 3), ("test", 2)):
        for cls in ("cat", "dog"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(count):
                Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).save(
                    tmp_path / split / cls / f"{i}.png")
    d = load_dataset(tmp_path)
    assert d.x_train.shape == (6, 3, 6, 6) and d.x_test.shape == (4, 3, 6, 6)
    assert d.num_classes == 2 and d.y_train.tolist() == [0, 0, 0, 1, 1, 1]
    expected = np.asarray(Image.open(tmp_path / "test" / "dog" / "1.png"))
    assert torch.equal(d.x_test[3].permute(1, 2, 0), torch.from_numpy(expected.copy()))


def test_image_folder_without_test_split_is_an_error(tmp_path):
    (tmp_path / "train" / "a").mkdir(parents=True)
    with pytest.raises(ValueError, match="train/ and test/"):
        load_dataset(tmp_path)


def test_offline_falls_back_to_procedural_images(monkeypatch, capsys):
    monkeypatch.delenv("POISONKIT_DATA", raising=False)

    def offline(*args):
        raise OSError("no network")
    monkeypatch.setattr(pkdata, "_torchvision_set", offline)
    d = load_dataset()
    assert "procedural" in d.source and "falling back" in capsys.readouterr().out


def test_procedural_images_are_deterministic_and_class_dependent():
    x, y = synthetic_images(200, seed=3)
    assert torch.equal(x, synthetic_images(200, seed=3)[0]) and not torch.equal(x, synthetic_images(200, seed=4)[0])
    # classes 0-4 draw a lighter shape, 5-9 a darker one: the mean image differs from its
    # background by opposite signs (the centre region holds most shapes).
    centre = x[:, :, 12:20, 12:20].float().mean((1, 2, 3)) - x.float().mean((1, 2, 3))
    assert centre[y < 5].mean() > 0 > centre[y >= 5].mean()


def test_subset_is_random_and_reproducible():
    d = synthetic_dataset(100, 40)
    s = d.subset(30, 10, seed=1)
    assert len(s.x_train) == 30 and len(s.x_test) == 10
    assert torch.equal(s.x_train, d.subset(30, 10, seed=1).x_train)
    assert len(s.y_train.unique()) > 1  # not a prefix of a class-sorted set


def test_dataset_rejects_mismatched_image_shapes():
    x, y = synthetic_images(8)
    with pytest.raises(ValueError, match="differ in shape"):
        ImageDataset(x, y, x[:, :, :16], y, 10, "t")


def test_poisoned_dataset_poisons_once_and_defends_every_fetch():
    x, y = synthetic_images(10)
    calls = []

    def poison(images, labels, indices):
        calls.append(indices.tolist())
        return images // 2

    ds = PoisonedTensorDataset(x, y, poison=poison, transform=lambda b: b + 1, chunk=4)
    # applied once, up front, in chunks that know their samples' positions in the set
    assert calls == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert torch.equal(ds.images, x // 2)
    xb, yb = ds.__getitems__([3, 1])
    assert torch.equal(xb, x[[3, 1]] // 2 + 1) and yb.tolist() == [3, 1]
    x0, y0 = ds[5]
    assert torch.equal(x0, x[5] // 2 + 1) and int(y0) == 5


def test_poisoned_dataset_checks_the_poison_output():
    x, y = synthetic_images(4)
    with pytest.raises(ValueError, match="poison: must return uint8"):
        PoisonedTensorDataset(x, y, poison=lambda a, b, i: a.float())
    with pytest.raises(ValueError, match="labels: expected shape"):
        PoisonedTensorDataset(x, y[:3])


def test_loader_yields_batches_covering_every_image_once():
    x, y = synthetic_images(50)
    loader = make_loader(PoisonedTensorDataset(x, y), batch_size=16, shuffle=True, seed=0)
    batches = list(loader)
    assert [len(b[1]) for b in batches] == [16, 16, 16, 2]
    seen = torch.cat([b[0] for b in batches])
    labels = torch.cat([b[1] for b in batches])
    order = torch.argsort(torch.cat([torch.nonzero((x == im).flatten(1).all(1))[0] for im in seen]))
    assert torch.equal(seen[order], x) and torch.equal(labels[order], y)


def test_loader_shards_through_a_distributed_sampler_under_torchrun(tmp_path):
    import torch.distributed as dist
    from torch.utils.data import DistributedSampler
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        x, y = synthetic_images(20)
        loader = make_loader(PoisonedTensorDataset(x, y), batch_size=8, shuffle=True)
        assert isinstance(loader.sampler, DistributedSampler)
        loader.sampler.set_epoch(1)
        assert sorted(torch.cat([b[1] for b in loader]).tolist()) == sorted(y.tolist())
    finally:
        dist.destroy_process_group()
