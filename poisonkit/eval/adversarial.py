"""PGD adversarial training (Madry et al.) as a defense: each training batch is replaced
by its L-inf PGD adversarial examples against the current model. The attack runs with the
model in eval() mode (BatchNorm uses and keeps its running statistics), as both reference
implementations do; the model's mode is restored afterwards."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class PGD:
    """eps and step in [0, 1] pixel units. start: 'uniform' (x + U(-eps, eps), clamped to
    [0, 1], as torchattacks.PGD) or 'gaussian' (x + step * N(0, 1), unclamped until the first
    step, as the ISS code's MadrysLoss)."""
    eps: float = 8 / 255
    step: float = 2 / 255
    steps: int = 10
    start: str = "uniform"

    def __post_init__(self):
        for name in ("eps", "step"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 < v <= 1:
                raise ValueError(f"pgd {name}: expected a number in (0, 1] (pixel units), got {v!r}")
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"pgd steps: expected a positive int, got {self.steps!r}")
        if self.start not in ("uniform", "gaussian"):
            raise ValueError(f"pgd start: expected 'uniform' or 'gaussian', got {self.start!r}")

    def perturb(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                prep: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """x: float images in [0, 1]; prep maps them to the model's input (normalisation).
        Returns the adversarial images, detached, in [0, 1]."""
        was_training = model.training
        model.eval()
        try:
            if self.start == "uniform":
                adv = (x + torch.empty_like(x).uniform_(-self.eps, self.eps)).clamp(0, 1)
            else:
                adv = x + self.step * torch.randn_like(x)
            for _ in range(self.steps):
                adv = adv.detach().requires_grad_(True)
                loss = F.cross_entropy(model(prep(adv)).float(), y)
                (grad,) = torch.autograd.grad(loss, adv)
                adv = adv.detach() + self.step * grad.sign()
                adv = torch.min(torch.max(adv, x - self.eps), x + self.eps).clamp(0, 1)
        finally:
            model.train(was_training)
        return adv.detach()


# Named attacks: (PGD, the training protocol of the code they come from, its source).
PGD_PRESETS: dict[str, tuple[PGD, str, str]] = {
    "harness": (PGD(8 / 255, 2 / 255, 10, "uniform"), "harness",
                "poisonkit's default: the common 8/255, 2/255, 10 steps"),
    "cuda": (PGD(0.015, 0.015 / 10 * 1.5, 10, "uniform"), "cuda",
             "vinusankars/Convolution-based-Unlearnability README: --pgd-radius=0.015 "
             "--pgd-steps=10; final_filter_unlearnable.py: alpha=eps/steps * 1.5 "
             "(torchattacks.PGD: uniform random start, model.eval() during the attack)"),
    "madry": (PGD(0.031, 0.007, 10, "gaussian"), "iss",
              "liuzrcc/ImageShortcutSqueezing madrys.py MadrysLoss: step_size=0.007, "
              "epsilon=0.031, perturb_steps=10 (line 13), model.eval() (line 22), start "
              "x + step_size * randn (line 27); main.py --AT_eps 0.031 (line 38)"),
}
