"""PGD adversarial training (Madry et al.) as a defense: each training batch is replaced
by its L-inf PGD adversarial examples against the current model."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class PGD:
    """eps and step in [0, 1] pixel units (8/255 and 2/255 by default), random start."""
    eps: float = 8 / 255
    step: float = 2 / 255
    steps: int = 10

    def __post_init__(self):
        for name in ("eps", "step"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 < v <= 1:
                raise ValueError(f"pgd {name}: expected a number in (0, 1] (pixel units), got {v!r}")
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"pgd steps: expected a positive int, got {self.steps!r}")

    def perturb(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                prep: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """x: float images in [0, 1]; prep maps them to the model's input (normalisation).
        Returns the adversarial images, detached, in [0, 1]."""
        delta = torch.empty_like(x).uniform_(-self.eps, self.eps)
        delta = (x + delta).clamp(0, 1) - x
        for _ in range(self.steps):
            delta.requires_grad_(True)
            loss = F.cross_entropy(model(prep(x + delta)).float(), y)
            (grad,) = torch.autograd.grad(loss, delta)
            delta = (delta.detach() + self.step * grad.sign()).clamp(-self.eps, self.eps)
            delta = (x + delta).clamp(0, 1) - x
        return (x + delta).detach()
