import pytest
import torch

from poisonkit.eval.adversarial import PGD


def test_pgd_stays_in_the_eps_ball_and_the_image_range_and_raises_the_loss():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 10))
    x = torch.rand(32, 3, 8, 8)
    y = torch.randint(0, 10, (32,))
    adv = PGD(eps=8 / 255, step=2 / 255, steps=5).perturb(model, x, y, prep=lambda t: t * 2 - 1)
    assert (adv - x).abs().max() <= 8 / 255 + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    loss = lambda t: torch.nn.functional.cross_entropy(model(t * 2 - 1), y)
    assert loss(adv) > loss(x) + 0.05
    assert not adv.requires_grad


@pytest.mark.parametrize("kwargs, name", [({"eps": 0}, "eps"), ({"step": float("nan")}, "step"),
                                          ({"steps": 0}, "steps")])
def test_bad_pgd_parameters_are_errors(kwargs, name):
    with pytest.raises(ValueError, match=name):
        PGD(**kwargs)
