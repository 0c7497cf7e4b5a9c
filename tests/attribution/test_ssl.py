"""SimCLR (lightly's loss and head): a tiny run lowers its loss; a killed run resumes to the
same weights as an uninterrupted one; a checkpoint of other images is refused."""
import pytest
import torch

import poisonkit.attribution.ssl as ssl
from poisonkit.attribution.embed import embed
from poisonkit.attribution.ssl import SimCLRConfig, load_simclr, train_simclr

TINY = SimCLRConfig(epochs=6, batch_size=32, lr=0.2, seed=0)


@pytest.fixture(scope="module")
def images(cifar):
    return cifar["x_train"][::150][:64]  # 64 real images across the classes


def test_a_tiny_ssl_run_lowers_its_loss(images, tmp_path):
    torch.manual_seed(0)
    backbone, state = train_simclr(images, tmp_path / "s.pt", TINY, verbose=False)
    losses = state["losses"]
    assert len(losses) == TINY.epochs
    assert sum(losses[-2:]) / 2 < losses[0] - 0.05, losses
    f = embed(backbone, images[:5])
    assert f.shape == (5, 128)


def test_a_killed_run_resumes_to_the_same_weights(images, tmp_path, monkeypatch):
    config = SimCLRConfig(epochs=3, batch_size=32, seed=1)
    torch.manual_seed(0)
    _, straight = train_simclr(images, tmp_path / "a.pt", config, verbose=False)
    calls = {"n": 0}
    real = ssl.simclr_views

    def dies_in_epoch_3(x, g):
        calls["n"] += 1
        if calls["n"] > 2 * 2 * 2:  # 2 views x 2 steps x 2 epochs
            raise KeyboardInterrupt
        return real(x, g)

    monkeypatch.setattr(ssl, "simclr_views", dies_in_epoch_3)
    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        train_simclr(images, tmp_path / "b.pt", config, checkpoint_seconds=0, verbose=False)
    assert torch.load(tmp_path / "b.pt", weights_only=True)["epoch"] == 2
    monkeypatch.setattr(ssl, "simclr_views", real)
    _, resumed = train_simclr(images, tmp_path / "b.pt", config, verbose=False)
    assert resumed["losses"] == straight["losses"]
    a, b = load_simclr(tmp_path / "a.pt")[0], load_simclr(tmp_path / "b.pt")[0]
    assert a.fingerprint() == b.fingerprint()


def test_a_checkpoint_for_other_images_is_refused(images, tmp_path):
    config = SimCLRConfig(epochs=1, batch_size=32)
    train_simclr(images, tmp_path / "c.pt", config, verbose=False)
    with pytest.raises(ValueError, match="checkpoint: .* other images or settings"):
        train_simclr(images.flip(0), tmp_path / "c.pt", config, verbose=False)
    with pytest.raises(ValueError, match="batch_size: SimCLR needs at least 2"):
        SimCLRConfig(batch_size=1)
