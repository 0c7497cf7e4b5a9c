"""DFR: the held-out split, the head refit, and that it never touches test data."""
import pytest
import torch
from torch import nn

from poisonkit.data import synthetic_dataset
from poisonkit.eval import probe, run
from poisonkit.eval.probe import dfr_probe, dfr_split, fit_head, last_linear
from poisonkit.eval.train import TrainConfig


def test_dfr_split_is_a_seeded_disjoint_ten_percent():
    keep, held = dfr_split(1000, seed=3)
    assert len(held) == 100 and len(keep) == 900
    assert not set(keep.tolist()) & set(held.tolist())
    assert torch.equal(held, dfr_split(1000, seed=3)[1]) and not torch.equal(held, dfr_split(1000, seed=4)[1])
    with pytest.raises(ValueError, match="fraction"):
        dfr_split(10, fraction=1.0)


def test_fit_head_learns_separable_features_from_the_trained_head():
    torch.manual_seed(0)
    labels = torch.arange(200) % 4
    feats = torch.randn(200, 8) * 0.1 + nn.functional.one_hot(labels, 8).float()
    head = nn.Linear(8, 4)
    before = (head(feats).argmax(1) == labels).float().mean()
    new = fit_head(feats, labels, head)
    assert (new(feats).argmax(1) == labels).float().mean() == 1.0 > before
    assert new is not head


def test_last_linear_and_a_head_that_is_not_the_output_are_errors():
    with pytest.raises(ValueError, match="no nn.Linear"):
        last_linear(nn.Sequential(nn.Flatten()))
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3), nn.Softmin(1))  # reverses the ranking
    x, y = torch.randint(0, 256, (20, 3, 2, 2), dtype=torch.uint8), torch.arange(20) % 3
    with pytest.raises(ValueError, match="last nn.Linear"):
        dfr_probe(model, x, y, x, y, prep=lambda t: t)


def test_dfr_never_touches_test_data(monkeypatch):
    data = synthetic_dataset(train=80, test=40, size=16)
    seen = {}
    real_fit = probe.fit_head

    def spy(features, labels, head, **kw):
        seen["labels"] = labels.clone()
        return real_fit(features, labels, head, **kw)

    real_inputs = probe.head_inputs

    def inputs_spy(model, images, prep, **kw):
        seen.setdefault("images", []).append(images)
        return real_inputs(model, images, prep, **kw)
    real_dataset = run.PoisonedTensorDataset

    def dataset_spy(images, labels, **kw):
        seen["trained"] = labels.clone()
        return real_dataset(images, labels, **kw)
    monkeypatch.setattr(probe, "fit_head", spy)
    monkeypatch.setattr(probe, "head_inputs", inputs_spy)
    monkeypatch.setattr(run, "PoisonedTensorDataset", dataset_spy)
    result, _ = run.run_condition(data, "blur", "none", config=TrainConfig(epochs=1, batch_size=32),
                                  verbose=False, probe="dfr")
    keep, held = dfr_split(80, seed=0)
    fitted_on, tested_on = seen["images"]
    assert torch.equal(fitted_on, data.x_train[held]) and torch.equal(seen["labels"], data.y_train[held])
    assert tested_on is data.x_test  # the test set is only ever used to measure the refitted head
    assert torch.equal(seen["trained"], data.y_train[keep])  # the held-out images are not trained on
    assert result["data"]["train"] == 80 and result["probe_result"]["heldout"] == 8
    assert 0 <= result["probe_result"]["accuracy"] <= 1 and "never the test set" in result["probe_result"]["split"]
