"""Training loop bookkeeping: peak/epoch/final, the schedule, evaluation, a tiny run."""
import pytest
import torch

from poisonkit.data import PoisonedTensorDataset, make_loader, synthetic_images
from poisonkit.eval.models import build_model
from poisonkit.eval.train import (History, TrainConfig, epochs_to, evaluate, lr_factor, multistep_factor,
                                  train)


def test_peak_is_the_first_maximum_and_final_the_last_epoch():
    h = History(test_accuracy=[0.1, 0.5, 0.3, 0.5, 0.2])
    assert (h.peak_accuracy, h.peak_epoch, h.final_accuracy) == (0.5, 2, 0.2)
    assert History(test_accuracy=[0.4]).peak_epoch == 1


def test_lr_schedule_warms_up_then_decays_to_zero():
    f = [lr_factor(s, 100, 0.2) for s in range(101)]
    assert f[0] == pytest.approx(0.1) and f[20] == pytest.approx(1.0) and f[100] == 0
    assert all(a < b for a, b in zip(f[:20], f[1:21])) and all(a > b for a, b in zip(f[20:100], f[21:]))


class Constant(torch.nn.Module):
    def __init__(self, k):
        super().__init__()
        self.k, self.w = k, torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.nn.functional.one_hot(torch.full((len(x),), self.k), 10).float() + self.w


def test_evaluate_counts_correct_predictions_and_applies_the_test_transform():
    x, y = synthetic_images(30)
    assert evaluate(Constant(3), x, y, 7, prep=lambda t: t) == pytest.approx((y == 3).float().mean().item())
    seen = []
    evaluate(Constant(3), x, y, 7, prep=lambda t: t, transform=lambda b: seen.append(len(b)) or b)
    assert sum(seen) == 30


@pytest.mark.parametrize("field, value", [("epochs", 0), ("batch_size", 0), ("lr", float("nan")),
                                          ("warmup", 1.0)])
def test_bad_config_is_an_error(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value})


def test_tiny_training_run_records_every_epoch():
    torch.manual_seed(0)
    x, y = synthetic_images(64)
    loader = make_loader(PoisonedTensorDataset(x, y), batch_size=32, shuffle=True)
    h = train(build_model("small", 10), loader, x[:16], y[:16], TrainConfig(epochs=2, batch_size=32),
              torch.device("cpu"), verbose=False)
    for series in (h.test_accuracy, h.train_accuracy, h.train_loss, h.epoch_seconds):
        assert len(series) == 2
    assert all(0 <= a <= 1 for a in h.test_accuracy + h.train_accuracy)


def test_multistep_schedule_is_the_step2_recipe():
    f = [multistep_factor(s, 10, 50) for s in range(0, 500, 10)]  # one value per epoch
    assert f[:25] == [1.0] * 25 and f[25:37] == [pytest.approx(0.1)] * 12 and f[37:] == [pytest.approx(0.01)] * 13


def test_epochs_to_thresholds():
    assert epochs_to([0.5, 0.91, 0.995], 0.9) == 2 and epochs_to([0.5, 0.91, 0.995], 0.99) == 3
    assert epochs_to([0.5], 0.99) is None


def test_protocol_gradient_clipping_and_cutmix_are_applied(monkeypatch):
    from poisonkit.eval import protocols
    clipped = []
    real = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda p, m: clipped.append(m) or real(p, m))
    torch.manual_seed(0)
    x, y = synthetic_images(64)
    loader = make_loader(PoisonedTensorDataset(x, y), batch_size=32, shuffle=True)
    config = TrainConfig(epochs=1, batch_size=32)
    train(build_model("small", 10), loader, x[:16], y[:16], config, torch.device("cpu"), verbose=False,
          protocol=protocols.RSKFF)
    assert clipped == [5.0, 5.0]
    clipped.clear()
    h = train(build_model("small", 10), loader, x[:16], y[:16], config, torch.device("cpu"), verbose=False,
              protocol=protocols.PROJECTION_STEP2)
    assert clipped == [] and len(h.train_loss) == 1
