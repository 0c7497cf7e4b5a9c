"""Targeted adversarial poisoning (poisonkit.poisons.tap): within eps, images in [0, 1],
a pure function of the key, and it moves the crafting model's predictions toward the
target class (y + 1) mod K."""
import pytest
import torch

from poisonkit.data import synthetic_images
from poisonkit.poisons.crafting import evaluate
from poisonkit.poisons.tap import TargetedAdversarial, target_labels

EPS = 8 / 255
TINY = {"steps": 4, "train_epochs": 8, "batch_size": 16, "progress": False}


@pytest.fixture(scope="module")
def tiny():
    return synthetic_images(40, 32, seed=2)


@pytest.fixture(scope="module")
def crafted(tiny):
    return TargetedAdversarial(10, key=5, **TINY).craft(*tiny)


def test_target_is_the_next_class():
    assert target_labels(torch.tensor([0, 3, 9]), 10).tolist() == [1, 4, 0]


def test_perturbation_is_within_eps_and_images_stay_in_range(crafted, tiny):
    x, y = tiny
    unit = x.float() / 255
    assert crafted.delta.shape == x.shape and crafted.delta.abs().max() <= EPS + 1e-6
    assert ((unit + crafted.delta).min() >= -1e-6) and ((unit + crafted.delta).max() <= 1 + 1e-6)
    stored = crafted.apply(x, y, torch.arange(len(x)))
    assert stored.dtype == torch.uint8 and (stored.int() - x.int()).abs().max() <= 8


def test_deterministic_for_a_key(crafted, tiny):
    again = TargetedAdversarial(10, key=5, **TINY).craft(*tiny)
    assert torch.equal(again.delta, crafted.delta) and again.history == crafted.history
    assert not torch.equal(TargetedAdversarial(10, key=6, **TINY).craft(*tiny).delta,
                           crafted.delta)


def test_moves_predictions_toward_the_target_class(crafted, tiny):
    x, y = tiny
    unit = x.float() / 255
    target = target_labels(y, 10)
    clean_rate, clean_loss = evaluate(crafted.model, [(unit, target)])
    rate, loss = evaluate(crafted.model, [((unit + crafted.delta).clamp(0, 1), target)])
    assert loss < clean_loss and rate > clean_rate
    assert crafted.history[-1]["target_rate"] == pytest.approx(rate)
    assert [h["epoch"] for h in crafted.history[:-1]] == list(range(1, 9))


@pytest.mark.parametrize("kwargs, match", [
    ({"step": float("nan")}, "step"), ({"steps": 0}, "steps"), ({"train_epochs": -1}, "train_epochs"),
    ({"lr": 0}, "lr"), ({"checkpoint_seconds": -1}, "checkpoint_seconds"), ({"key": 1.5}, "key")])
def test_bad_parameters_are_errors(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        TargetedAdversarial(10, **kwargs)
