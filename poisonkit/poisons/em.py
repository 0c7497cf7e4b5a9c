"""Error-minimizing noise, "unlearnable examples" (Huang et al., ICLR 2021; DESIGN §3.6),
as HanxunH/Unlearnable-Examples crafts it (perturbation.py, toolbox.PerturbationTool):

    repeat (one outer iteration = one unit of work, checkpointed):
      train the surrogate `train_steps` batches on the perturbed images (SGD 0.1, momentum
        0.9, weight decay 5e-4, gradient norm clipped at 5, no augmentation);
      for every batch in order, in eval mode: `steps` signed-gradient steps of `step`
        that *lower* the surrogate's loss on the true labels, within L-inf eps
        (min_min_attack); sample-wise: keep each image's result; class-wise: each class's
        noise becomes the mean of its images' results, clipped to eps;
      stop when the surrogate's accuracy on the perturbed training set >= stop_accuracy
      (the reference's 99%), or after max_iterations (reported in `history`).

The reference starts from zero noise and loops until the stop condition; poisonkit also
caps the number of outer iterations. Everything random is drawn from the key. The stopping
rule is not part of a checkpoint's fingerprint: a run can be resumed with another one
(extended, or stopped at the iterations already done).
"""
from __future__ import annotations

import torch

from .crafting import CraftedPoison, attack_model, check_count, descend, evaluate, train_step

# The reference's ResNet-18 settings (README, configs/cifar10/resnet18.yaml).
PAPER = {"model": "resnet18", "steps": 20, "train_steps": 10, "batch_size": 512,
         "max_iterations": 100}


class ErrorMinimizing(CraftedPoison):
    """Sample-wise (per_class=False) or class-wise error-minimizing noise.

    eps, step in [0, 1] units (8/255, 0.8/255); steps PGD steps per noise update;
    train_steps surrogate batches between noise updates; stop at stop_accuracy or after
    max_iterations outer iterations. options: CraftedPoison's (model 'small' for CPU or
    'resnet18' at paper scale, see PAPER; batch_size, key, device, state, ratio, ...).
    """
    method = "em"

    def __init__(self, num_classes: int, per_class: bool = False, eps: float = 8 / 255,
                 step: float = 0.8 / 255, steps: int = 20, train_steps: int = 10,
                 stop_accuracy: float = 0.99, max_iterations: int = 10, lr: float = 0.1,
                 **options):
        super().__init__(num_classes, eps, step, steps, lr, **options)
        self.per_class = bool(per_class)
        self.method = "em-class" if self.per_class else "em"
        self.train_steps = check_count("train_steps", train_steps, 0)
        if isinstance(stop_accuracy, bool) or not isinstance(stop_accuracy, (int, float)) or \
                not 0 < stop_accuracy <= 1:
            raise ValueError(f"stop_accuracy: expected a fraction in (0, 1], got {stop_accuracy!r}")
        self.stop_accuracy = float(stop_accuracy)
        self.max_iterations = check_count("max_iterations", max_iterations)

    def settings(self) -> dict:
        return {**super().settings(), "per_class": self.per_class,
                "train_steps": self.train_steps}

    def stopping(self) -> dict:
        return {"stop_accuracy": self.stop_accuracy, "max_iterations": self.max_iterations}

    def _finished(self, state: dict) -> bool:
        history = state["history"]
        return bool(history) and (history[-1]["accuracy"] >= self.stop_accuracy
                                  or len(history) >= self.max_iterations)

    def _optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.model.parameters(), lr=self.lr, momentum=0.9,
                               weight_decay=5e-4)

    def _start(self, state: dict) -> None:
        rows = self.num_classes if self.per_class else len(self.x)
        state["delta"] = torch.zeros(rows, *self.x.shape[1:], device=self.device)
        state["order"] = torch.randperm(len(self.x), generator=self.generator)
        state["cursor"] = 0
        self.opt = self._optimizer()

    def _noise_of(self, delta: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return delta[self.y[idx]] if self.per_class else delta[idx]

    def _train(self, state: dict) -> None:
        """train_steps surrogate batches on the perturbed images, continuing through a
        key-drawn order (a new one each pass)."""
        for _ in range(self.train_steps):
            if state["cursor"] >= len(self.x):
                state["order"] = torch.randperm(len(self.x), generator=self.generator)
                state["cursor"] = 0
            idx = state["order"][state["cursor"]:state["cursor"] + self.batch_size].to(self.device)
            state["cursor"] += self.batch_size
            x = (self.x[idx] + self._noise_of(state["delta"], idx)).clamp(0, 1)
            train_step(self.model, self.opt, x, self.y[idx], self.amp, clip=5.0)

    def _update_noise(self, state: dict, attacker: torch.nn.Module) -> None:
        delta = state["delta"]
        for idx in self._batches():
            x, y = self.x[idx], self.y[idx]
            moved = descend(attacker, x, y, self._noise_of(delta, idx), self.eps, self.step,
                            self.steps, amp=self.amp)
            if not self.per_class:
                delta[idx] = moved
                continue
            sums = torch.zeros_like(delta).index_add_(0, y, moved)
            counts = torch.bincount(y, minlength=self.num_classes)
            present = counts > 0
            delta[present] = (sums[present] / counts[present, None, None, None]).clamp(
                -self.eps, self.eps)

    def _advance(self, state: dict) -> bool:
        self._train(state)
        attacker = attack_model(self.model)   # fixed until the next _train
        self._update_noise(state, attacker)
        delta = state["delta"]
        accuracy, loss = evaluate(attacker, (
            ((self.x[idx] + self._noise_of(delta, idx)).clamp(0, 1), self.y[idx])
            for idx in self._batches()), self.amp)
        state["history"].append({"iteration": state["unit"] + 1, "accuracy": accuracy,
                                 "loss": loss})
        return self._finished(state)
