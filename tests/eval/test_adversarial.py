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


def test_attack_runs_in_eval_mode_and_restores_the_mode():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 6 * 6, 10)).train()
    stats = model[1].running_mean.clone()
    x, y = torch.rand(16, 3, 8, 8), torch.randint(0, 10, (16,))
    PGD(steps=3).perturb(model, x, y, prep=lambda t: t)
    assert model.training and torch.equal(model[1].running_mean, stats)  # no BN update by the attack


def test_gaussian_start_is_the_madry_loss_of_the_iss_code():
    """madrys.py: x_adv = x + step * randn; each step: + step * sign(grad), project onto the
    eps ball, clamp to [0, 1]."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 10))
    x, y = torch.rand(8, 3, 4, 4), torch.randint(0, 10, (8,))
    torch.manual_seed(1)
    adv = PGD(eps=0.031, step=0.007, steps=4, start="gaussian").perturb(model, x, y, prep=lambda t: t)
    torch.manual_seed(1)
    ref = x.clone() + 0.007 * torch.randn(x.shape)
    for _ in range(4):
        ref.requires_grad_()
        grad = torch.autograd.grad(torch.nn.functional.cross_entropy(model(ref), y), [ref])[0]
        ref = ref.detach() + 0.007 * torch.sign(grad)
        ref = torch.min(torch.max(ref, x - 0.031), x + 0.031).clamp(0, 1)
    torch.testing.assert_close(adv, ref)
