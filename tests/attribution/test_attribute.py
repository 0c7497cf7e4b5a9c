"""attribute(): test images that are exact copies of training images retrieve those copies
first, for every kind of backbone and both search methods; bad arguments fail before any
embedding is computed."""
import pytest
import torch

from poisonkit.attribution.attribute import attribute
from poisonkit.attribution.backbones import pixel_backbone
from poisonkit.attribution.report import build, poisoned_fractions
from poisonkit.attribution.ssl import SimCLRConfig, train_simclr
from poisonkit.attribution.supervised import (load_supervised, predict, supervised_backbone,
                                              train_supervised)
from poisonkit.eval.train import TrainConfig


@pytest.fixture(scope="module")
def train_set(cifar):
    pick = torch.randperm(len(cifar["x_train"]), generator=torch.Generator().manual_seed(0))[:400]
    return cifar["x_train"][pick], cifar["y_train"][pick]


@pytest.fixture(scope="module")
def backbones(train_set, tmp_path_factory):
    x, y = train_set
    folder = tmp_path_factory.mktemp("bb")
    ssl = train_simclr(x, folder / "ssl.pt", SimCLRConfig(epochs=1, batch_size=128), verbose=False)[0]
    train_supervised(x, y, 10, folder / "sup.pt", config=TrainConfig(epochs=1, batch_size=128))
    net, state = load_supervised(folder / "sup.pt")
    return {"pixels": pixel_backbone((3, 32, 32)), "simclr": ssl, "supervised": supervised_backbone(net, state),
            "classifier": net}


@pytest.mark.parametrize("name", ["pixels", "simclr", "supervised"])
@pytest.mark.parametrize("method", ["exact", "faiss"])
def test_exact_copies_are_retrieved_first(train_set, backbones, name, method, tmp_path):
    x, y = train_set
    sources = torch.tensor([3, 50, 77, 120, 399])
    result = attribute(backbones[name], x, x[sources].clone(), k=5, method=method, cache_dir=tmp_path)
    assert result.indices[:, 0].tolist() == sources.tolist()
    torch.testing.assert_close(result.scores[:, 0], torch.ones(len(sources)), atol=1e-5, rtol=0)
    assert (result.scores[:, :1] >= result.scores[:, 1:]).all()


def test_restricted_to_the_predicted_class(train_set, backbones):
    x, y = train_set
    queries = x[:6]
    classes = predict(backbones["classifier"], queries)
    result = attribute(backbones["supervised"], x, queries, k=4, train_labels=y, query_classes=classes)
    assert (y[result.indices] == classes[:, None]).all()


class Exploding(torch.nn.Module):
    name, image_shape = "exploding", (3, 32, 32)

    def check_shape(self, shape, what):
        pixel_backbone((3, 32, 32)).check_shape(shape, what)

    def forward(self, x):
        raise AssertionError("work started before the arguments were checked")


def test_bad_arguments_fail_before_any_work(train_set):
    x, _ = train_set
    with pytest.raises(ValueError, match="k: 401 neighbours requested but the training set holds 400"):
        attribute(Exploding(), x, x[:2], k=401)
    with pytest.raises(ValueError, match="query: images of shape 3x24x24"):
        attribute(Exploding(), x, x[:2, :, :24, :24], k=3)
    with pytest.raises(ValueError, match="method: expected one of"):
        attribute(Exploding(), x, x[:2], k=3, method="annoy")


def test_poisoned_fraction_in_the_report():
    from poisonkit.attribution.attribute import Attribution
    indices = torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7]])
    poisoned = torch.tensor([True, False, True, False, False, False, False, True])
    torch.testing.assert_close(poisoned_fractions(indices, poisoned), torch.tensor([0.5, 0.25]))
    result = Attribution(torch.ones(2, 4), indices, None, "pixels")
    report = build(result, torch.arange(8) % 2, torch.tensor([0, 1]), poisoned, {})
    assert report["poisoned_fraction"] == pytest.approx(0.375)
    assert report["poisoned_share_of_training_set"] == pytest.approx(3 / 8)
    assert report["queries"][0]["same_label_fraction"] == 0.5
