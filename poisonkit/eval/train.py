"""The training loop of the evaluation protocol (DESIGN §4): SGD 0.1 / momentum 0.9 /
weight decay 5e-4, clean test accuracy after every epoch; augmentation, normalisation,
gradient clipping and CutMix as the run's protocol (protocols.py) says.
channels_last everywhere (on this CPU it halves the small CNN's step time too); bfloat16
autocast on CUDA. Under torchrun: DistributedDataParallel."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from .adversarial import PGD
from .augment import cutmix, to_unit
from .protocols import HARNESS, Protocol

SCHEDULES = ("warmup-linear", "multistep")


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 256
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    warmup: float = 0.2          # fraction of steps with a linear warm-up, then linear decay to 0
    schedule: str = "warmup-linear"  # or "multistep": x0.1 at 50% and 75% of the epochs
    test_batch_size: int = 1000
    seed: int = 0

    def __post_init__(self):
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs: expected a positive int, got {self.epochs!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size: expected a positive int, got {self.batch_size!r}")
        if not math.isfinite(self.lr) or self.lr <= 0:
            raise ValueError(f"lr: expected a positive number, got {self.lr!r}")
        if not 0 <= self.warmup < 1:
            raise ValueError(f"warmup: expected a fraction in [0, 1), got {self.warmup!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule: expected one of {SCHEDULES}, got {self.schedule!r}")


@dataclass
class History:
    """Per-epoch metrics; accuracies are fractions of the clean test set."""
    test_accuracy: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)

    @property
    def peak_accuracy(self) -> float:
        return max(self.test_accuracy)

    @property
    def peak_epoch(self) -> int:
        """1-based epoch of the first peak (early stopping would stop there)."""
        return self.test_accuracy.index(self.peak_accuracy) + 1

    @property
    def final_accuracy(self) -> float:
        return self.test_accuracy[-1]


def epochs_to(train_accuracy: list[float], threshold: float) -> int | None:
    """1-based first epoch whose training accuracy reaches `threshold` (None: never); how
    fast a poison is learned ('poisons that are learned faster are more effective')."""
    return next((i + 1 for i, a in enumerate(train_accuracy) if a >= threshold), None)


def multistep_factor(step: int, steps_per_epoch: int, epochs: int) -> float:
    """x0.1 after int(0.5 E) and again after int(0.75 E) epochs (the projection step-2
    recipe's MultiStepLR, stepped once per epoch)."""
    epoch = step // max(1, steps_per_epoch)
    return 0.1 ** sum(epoch >= m for m in (int(epochs * 0.5), int(epochs * 0.75)))


def lr_factor(step: int, total: int, warmup: float) -> float:
    """Linear warm-up from 0.1x over the first `warmup` of the steps, then linear decay to 0."""
    peak = max(1, round(warmup * total))
    if step < peak:
        return 0.1 + 0.9 * step / peak
    return max(0.0, (total - step) / max(1, total - peak))


@torch.no_grad()
def evaluate(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int,
             prep: Callable, transform: Callable | None = None, amp: bool = False) -> float:
    """Accuracy on (images, labels), uint8 NCHW on the CPU; transform applies to the images
    first (for defenses that change the input domain)."""
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size]
        x = transform(x) if transform is not None else x
        x = to_unit(x.to(device, non_blocking=True))
        with torch.autocast(device.type, torch.bfloat16, enabled=amp):
            pred = model(prep(x)).argmax(1)
        correct += (pred.cpu() == labels[i:i + batch_size]).sum().item()
    return correct / len(images)


def _sync_ranks(model: torch.nn.Module, seen: int, correct: int, loss_sum: float):
    """End of a DDP epoch: every rank takes rank 0's buffers (BatchNorm statistics: DDP
    broadcasts them before each forward, so the last batch left each rank its own, and the
    ranks' test accuracies would differ) and the epoch's training totals over all ranks."""
    for buffer in model.buffers():
        torch.distributed.broadcast(buffer, src=0)
    device = next(model.parameters()).device
    totals = torch.tensor([seen, correct, loss_sum], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(totals)
    return int(totals[0]), int(totals[1]), float(totals[2])


def train(model: torch.nn.Module, loader, test_images: torch.Tensor, test_labels: torch.Tensor,
          config: TrainConfig, device: torch.device, adversary: PGD | None = None,
          test_transform: Callable | None = None, verbose: bool = True, desc: str = "train",
          protocol: Protocol = HARNESS) -> History:
    """Trains model (already on device) on loader's (images, labels) batches; returns the
    per-epoch history. Each batch: protocol.augment to the test images' size, the adversary
    (if any), CutMix (if the protocol has it), protocol.prep, a step with the protocol's
    gradient clipping. Test accuracy is measured on clean (untransformed) test images unless
    test_transform is given."""
    cuda = device.type == "cuda"
    memory_format = torch.channels_last
    model.to(memory_format=memory_format)
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    net = model
    if distributed:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] if cuda else None)
    prep = lambda x: protocol.prep(x).contiguous(memory_format=memory_format)
    size = tuple(test_images.shape[-2:])
    opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                          weight_decay=config.weight_decay, nesterov=config.nesterov)
    total = config.epochs * len(loader)
    if config.schedule == "multistep":
        factor = lambda s: multistep_factor(s, len(loader), config.epochs)
    else:
        factor = lambda s: lr_factor(s, total, config.warmup)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    gen = torch.Generator().manual_seed(config.seed)
    mix_rng = np.random.default_rng(config.seed)
    history = History()
    for epoch in range(config.epochs):
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        net.train()
        start, seen, correct, loss_sum = time.perf_counter(), 0, 0, 0.0
        bar = tqdm(loader, desc=f"{desc} {epoch + 1}/{config.epochs}", leave=False, disable=not verbose)
        for x, y in bar:
            x = protocol.augment(to_unit(x.to(device, non_blocking=True)), size, gen)
            y = y.to(device, non_blocking=True)
            if adversary is not None:  # the unwrapped model: no gradient sync for the attack
                with torch.autocast(device.type, torch.bfloat16, enabled=cuda):
                    x = adversary.perturb(model, x, y, prep)
            x, y_a, y_b, lam = cutmix(x, y, protocol.cutmix_prob, protocol.cutmix_beta, mix_rng)
            with torch.autocast(device.type, torch.bfloat16, enabled=cuda):
                logits = net(prep(x))
            loss = F.cross_entropy(logits.float(), y_a)
            if lam < 1:
                loss = lam * loss + (1 - lam) * F.cross_entropy(logits.float(), y_b)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if protocol.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), protocol.grad_clip)
            opt.step()
            sched.step()
            seen += len(y)
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
        if distributed:
            seen, correct, loss_sum = _sync_ranks(model, seen, correct, loss_sum)
        acc = evaluate(model, test_images, test_labels, config.test_batch_size, prep,
                       test_transform, amp=cuda)
        history.test_accuracy.append(acc)
        history.train_accuracy.append(correct / seen)
        history.train_loss.append(loss_sum / seen)
        history.epoch_seconds.append(time.perf_counter() - start)
        if verbose:
            tqdm.write(f"{desc} epoch {epoch + 1}/{config.epochs}: loss {loss_sum / seen:.3f} "
                       f"train {correct / seen:.1%} test {acc:.1%} ({history.epoch_seconds[-1]:.1f}s)")
    return history
