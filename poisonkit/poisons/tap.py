"""Targeted adversarial poisoning, "TAP" (Fowl et al., NeurIPS 2021; DESIGN §3.6), as
lhfowl/adversarial_poisons crafts it (anneal.py --recipe targeted, ForgemasterTargeted):

  1. train a crafting model on the clean training set (one unit of work per epoch;
     SGD 0.1, momentum 0.9, weight decay 5e-4, random crop + flip, linear warm-up and decay);
  2. per batch (one unit each), starting from clipped Gaussian noise (--init randn), take
     `steps` signed-gradient steps of `step` that lower the crafting model's loss on the
     *target* labels (y + 1) mod K through random crop + flip of the perturbed images
     (--paugment, the reference's default), projected to L-inf eps and [0, 1].

The reference's PGD step is eps * tau = 8/255 * 0.05 = 0.4/255 with 250 steps (PAPER);
the CPU default takes 10 steps of 2/255 (eps / 4: enough to reach the eps ball's
surface in a few steps) against the small CNN trained for 5 epochs.
"""
from __future__ import annotations

import torch

from ..eval.augment import crop_flip
from ..eval.train import lr_factor
from .crafting import CraftedPoison, attack_model, check_count, descend, evaluate, train_step

PAPER = {"model": "resnet18", "steps": 250, "step": 0.4 / 255, "train_epochs": 40,
         "batch_size": 512}


def target_labels(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """The reference's class shift: y -> (y + 1) mod K."""
    return (labels + 1) % num_classes


class TargetedAdversarial(CraftedPoison):
    """Sample-wise targeted error-maximizing noise. eps, step in [0, 1] units; steps PGD
    steps per batch; train_epochs epochs of the crafting model on clean data. options:
    CraftedPoison's (model 'small' for CPU or 'resnet18' at paper scale, see PAPER;
    batch_size, key, device, state, ratio, ...)."""
    method = "tap"

    def __init__(self, num_classes: int, eps: float = 8 / 255, step: float = 2 / 255,
                 steps: int = 10, train_epochs: int = 5, lr: float = 0.1, augment: bool = True,
                 **options):
        super().__init__(num_classes, eps, step, steps, lr, **options)
        self.train_epochs = check_count("train_epochs", train_epochs, 0)
        self.augment = bool(augment)

    def settings(self) -> dict:
        return {**super().settings(), "train_epochs": self.train_epochs, "augment": self.augment}

    def _optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.model.parameters(), lr=self.lr, momentum=0.9,
                               weight_decay=5e-4, nesterov=True)

    def _start(self, state: dict) -> None:
        noise = torch.randn(len(self.x), *self.x.shape[1:], generator=self.generator)
        state["delta"] = (noise * self.eps).clamp(-self.eps, self.eps).to(self.device)
        state["train_step"], state["cursor"] = 0, 0
        self.opt = self._optimizer()

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        return crop_flip(x, generator=self.generator)

    def _train_epoch(self, state: dict) -> None:
        order = torch.randperm(len(self.x), generator=self.generator)
        total = self.train_epochs * -(-len(self.x) // self.batch_size)
        for idx in self._batches(order):
            for group in self.opt.param_groups:
                group["lr"] = self.lr * lr_factor(state["train_step"], total, 0.2)
            train_step(self.model, self.opt, self._augment(self.x[idx]), self.y[idx], self.amp)
            state["train_step"] += 1
        accuracy, _ = evaluate(self.model, ((self.x[i], self.y[i]) for i in self._batches()),
                               self.amp)
        state["history"].append({"epoch": state["unit"] + 1, "clean_accuracy": accuracy})

    def _attack_batch(self, state: dict) -> None:
        idx = torch.arange(state["cursor"], min(state["cursor"] + self.batch_size, len(self.x)),
                           device=self.device)
        x, target = self.x[idx], target_labels(self.y[idx], self.num_classes)
        if self._attacker is None:   # the crafting model is fixed from here on
            self._attacker = attack_model(self.model)
        state["delta"][idx] = descend(self._attacker, x, target, state["delta"][idx], self.eps,
                                      self.step, self.steps,
                                      self._augment if self.augment else None, self.amp)
        state["cursor"] = int(idx[-1]) + 1

    def _advance(self, state: dict) -> bool:
        if state["unit"] < self.train_epochs:
            self._train_epoch(state)
            return False
        self._attack_batch(state)
        if state["cursor"] < len(self.x):
            return False
        delta = state["delta"]
        accuracy, loss = evaluate(self._attacker, (
            ((self.x[i] + delta[i]).clamp(0, 1), target_labels(self.y[i], self.num_classes))
            for i in self._batches()), self.amp)
        state["history"].append({"target_rate": accuracy, "target_loss": loss})
        return True
