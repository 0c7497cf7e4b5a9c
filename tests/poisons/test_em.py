"""Error-minimizing noise (poisonkit.poisons.em): within eps, images in [0, 1], a pure
function of the key, lowers the surrogate's loss (the min-min objective), class-wise
noise is one pattern per class, and the reference's PGD update."""
import pytest
import torch
import torch.nn.functional as F

from poisonkit.data import synthetic_images
from poisonkit.poisons.crafting import descend, evaluate, prep
from poisonkit.poisons.em import ErrorMinimizing

EPS = 8 / 255
TINY = {"steps": 3, "train_steps": 2, "max_iterations": 2, "batch_size": 16, "progress": False}


@pytest.fixture(scope="module")
def tiny():
    return synthetic_images(40, 32, seed=1)


@pytest.fixture(scope="module")
def crafted(tiny):
    return ErrorMinimizing(10, key=3, **TINY).craft(*tiny)


def test_perturbation_is_within_eps_and_images_stay_in_range(crafted, tiny):
    x, y = tiny
    assert crafted.delta.shape == x.shape and crafted.delta.dtype == torch.float32
    assert crafted.delta.abs().max() <= EPS + 1e-6
    assert crafted.delta.abs().max() > EPS / 2   # it moved
    unit = x.float() / 255
    assert ((unit + crafted.delta).min() >= -1e-6) and ((unit + crafted.delta).max() <= 1 + 1e-6)
    idx = torch.arange(len(x))
    poisoned = crafted.apply(unit, y, idx)
    assert poisoned.min() >= 0 and poisoned.max() <= 1
    assert (poisoned - unit).abs().max() <= EPS + 1e-6
    stored = crafted.apply(x, y, idx)   # uint8: rounded to nearest, at most 8 levels away
    assert stored.dtype == torch.uint8
    assert (stored.int() - x.int()).abs().max() <= 8
    assert torch.equal(stored, (poisoned * 255).round().to(torch.uint8))


def test_deterministic_for_a_key(crafted, tiny):
    again = ErrorMinimizing(10, key=3, **TINY).craft(*tiny)
    assert torch.equal(again.delta, crafted.delta) and again.history == crafted.history
    other = ErrorMinimizing(10, key=4, **TINY).craft(*tiny)
    assert not torch.equal(other.delta, crafted.delta)


def test_noise_lowers_the_surrogates_training_loss(crafted, tiny):
    x, y = tiny
    unit = x.float() / 255
    _, clean_loss = evaluate(crafted.model, [(unit, y)])
    _, poisoned_loss = evaluate(crafted.model, [((unit + crafted.delta).clamp(0, 1), y)])
    assert poisoned_loss < clean_loss
    assert crafted.history[-1]["loss"] == pytest.approx(poisoned_loss, rel=1e-4)
    assert [h["iteration"] for h in crafted.history] == [1, 2]   # max_iterations reached


def test_classwise_noise_is_one_pattern_per_class(tiny):
    x, y = tiny
    em = ErrorMinimizing(10, per_class=True, key=3, **TINY).craft(x, y)
    assert em.delta.shape == (10, *x.shape[1:]) and em.delta.abs().max() <= EPS + 1e-6
    scrambled = torch.randperm(len(x))   # class-wise: the sample index does not matter
    unit = x.float() / 255
    assert torch.equal(em.apply(unit, y, scrambled), (unit + em.delta[y]).clamp(0, 1))


def test_stops_once_the_surrogate_fits_the_poisoned_set(tiny):
    em = ErrorMinimizing(10, key=3, **{**TINY, "max_iterations": 5}, stop_accuracy=0.05)
    em.craft(*tiny)
    assert len(em.history) == 1 and em.history[0]["accuracy"] >= 0.05


def test_descend_is_the_reference_min_min_update(crafted, tiny):
    """Against toolbox.PerturbationTool.min_min_attack as written from the paper: x <- x -
    step * sign(grad); eta = clip(x - x0, -eps, eps); x = clip(x0 + eta, 0, 1)."""
    x, y = tiny
    x0 = x.float()[:8] / 255
    y = y[:8]
    model = crafted.model.eval()
    start = torch.zeros_like(x0)
    ours = descend(model, x0, y, start, EPS, 0.8 / 255, 4)
    img = x0.clone()
    for _ in range(4):
        img.requires_grad_(True)
        loss = F.cross_entropy(model(prep(img)), y)
        grad, = torch.autograd.grad(loss, img)
        img = img.detach() - 0.8 / 255 * grad.sign()
        eta = (img - x0).clamp(-EPS, EPS)
        img = (x0 + eta).clamp(0, 1)
    torch.testing.assert_close(ours, img - x0, atol=1e-6, rtol=0)


@pytest.mark.parametrize("kwargs, match", [
    ({"step": 0}, "step"), ({"steps": 0}, "steps"), ({"train_steps": -1}, "train_steps"),
    ({"stop_accuracy": 1.5}, "stop_accuracy"), ({"max_iterations": 0}, "max_iterations"),
    ({"batch_size": 0}, "batch_size"), ({"num_classes": 1}, "num_classes")])
def test_bad_parameters_are_errors(kwargs, match):
    kwargs = {"num_classes": 10, **kwargs}
    with pytest.raises(ValueError, match=match):
        ErrorMinimizing(**kwargs)


def test_apply_checks_its_input(crafted, tiny):
    x, y = tiny
    with pytest.raises(RuntimeError, match="craft"):
        ErrorMinimizing(10).apply(x, y, torch.arange(len(x)))
    with pytest.raises(ValueError, match="indices: expected values in"):
        crafted.apply(x, y, torch.arange(len(x)) + 1)
    with pytest.raises(ValueError, match="images: expected images of shape"):
        crafted.apply(x[:, :, :16, :16], y, torch.arange(len(x)))


def test_a_finished_run_can_be_extended_to_the_longer_runs_result(tiny, tmp_path):
    """Stopping rules are not part of the checkpoint's fingerprint: a run stopped at one
    iteration continues to two and equals a straight two-iteration run."""
    state = tmp_path / "em.pt"
    short = {**TINY, "max_iterations": 1}
    assert len(ErrorMinimizing(10, key=3, state=state, **short).craft(*tiny).history) == 1
    extended = ErrorMinimizing(10, key=3, state=state, **TINY).craft(*tiny)
    straight = ErrorMinimizing(10, key=3, **TINY).craft(*tiny)
    assert torch.equal(extended.delta, straight.delta) and extended.history == straight.history
    again = ErrorMinimizing(10, key=3, state=state, **short).craft(*tiny)   # already past it
    assert torch.equal(again.delta, straight.delta)
