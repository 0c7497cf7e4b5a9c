"""VAEs from local folders, offline: a save_pretrained folder loads and works; the cached
stand-in is built once, atomically, in the user's cache; missing folders are clear errors."""
import os
import subprocess
import sys

import pytest
import torch

from poisonkit.editing import vae as vae_module
from poisonkit.editing.vae import TINY_NAME, cache_dir, default_vae, load_vae
from poisonkit.editing.protect import protect
from tests.conftest import cifar_path
from tests.editing.conftest import make_tiny_vae

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_saved_autoencoder_loads_offline_and_works(tmp_path, crops):
    original = make_tiny_vae(seed=5)
    original.save_pretrained(tmp_path / "vae")
    # In a fresh process with the hub unreachable: only local files may be read.
    code = ("import sys, torch; from poisonkit.editing.vae import load_vae; "
            "v = load_vae(sys.argv[1]); x = torch.zeros(1, 3, 16, 16); "
            "print(tuple(v.encode(x).latent_dist.mean.shape))")
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=ROOT, HF_HOME=str(tmp_path / "hf"))
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path / "vae")], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().endswith("(1, 4, 8, 8)")
    loaded = load_vae(tmp_path / "vae")
    x = crops.float() / 127.5 - 1
    with torch.no_grad():
        assert torch.allclose(loaded.encode(x).latent_dist.mean, original.encode(x).latent_dist.mean)
    result = protect(crops, loaded, iters=3, progress=False)
    assert result.distances[-1].mean() < result.distances[0].mean()


def test_missing_or_wrong_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="vae: no such folder"):
        load_vae(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        load_vae(tmp_path / "empty")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="vae: cannot load"):
        load_vae(tmp_path / "broken")


def test_cache_location(monkeypatch, tmp_path):
    monkeypatch.setenv("POISONKIT_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("POISONKIT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "x" / "poisonkit"


def test_stand_in_is_trained_once_and_published_whole(monkeypatch, tmp_path, cifar):
    monkeypatch.setenv("POISONKIT_CACHE", str(tmp_path))
    data = cifar_path()
    monkeypatch.delenv("POISONKIT_DATA", raising=False)
    with pytest.raises(ValueError, match="not in the cache .* no data"):
        default_vae(None)
    calls = []
    real = vae_module.train_tiny_vae

    def short(images, **kwargs):  # the real recipe, cut to 2 steps for the test
        calls.append(len(images))
        return real(images[:64], steps=2, batch_size=8, progress=False)
    monkeypatch.setattr(vae_module, "train_tiny_vae", short)
    first = default_vae(data, progress=False)
    assert calls == [len(cifar["x_train"])]
    published = tmp_path / TINY_NAME
    assert (published / "config.json").is_file() and (published / "poisonkit_training.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == [TINY_NAME]  # no staging or lock left
    again = default_vae(None)  # from the cache: no data needed, no training
    assert calls == [len(cifar["x_train"])]
    for a, b in zip(first.parameters(), again.parameters()):
        assert torch.equal(a, b)


def test_training_lowers_the_loss(cifar):
    _, short = vae_module.train_tiny_vae(cifar["x_train"][:256], steps=1, batch_size=16,
                                         progress=False)
    _, longer = vae_module.train_tiny_vae(cifar["x_train"][:256], steps=25, batch_size=16,
                                          progress=False)
    assert longer["final_l1_ema"] < short["final_l1_ema"]
    with pytest.raises(ValueError, match="images: expected uint8 \\[N, 3, 32, 32\\]"):
        vae_module.train_tiny_vae(cifar["x_train"][:64, :, :16], steps=1)
