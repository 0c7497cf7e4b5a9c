"""SimCLR on the user's own images, built on lightly (NTXentLoss, SimCLRProjectionHead);
the views are lightly's SimCLR augmentations drawn per image and applied batched
(views.py). Encoder: the small CNN or ResNet-18 of poisonkit.eval.models, read at its
penultimate layer. Resumable: the checkpoint (model, head, optimiser, schedule, random
state, loss per epoch) is rewritten atomically every `checkpoint_seconds` and at the end;
a finished checkpoint is loaded instead of trained again; one written for other images or
settings is refused."""
from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass

import torch
from tqdm import tqdm

from .._io import atomic_write
from ..eval.augment import CIFAR_MEAN, CIFAR_STD
from ..eval.models import build_model
from .backbones import Backbone, features_backbone, load_checkpoint
from .embed import content_digest
from .views import simclr_views

FORMAT = "poisonkit-simclr/1"


@dataclass(frozen=True)
class SimCLRConfig:
    arch: str = "small"          # poisonkit.eval.models name: small or resnet18
    epochs: int = 20
    batch_size: int = 256
    lr: float = 0.06             # SGD x batch_size / 256, cosine decay (lightly's CIFAR benchmark)
    momentum: float = 0.9
    weight_decay: float = 5e-4
    temperature: float = 0.5     # lightly's NTXentLoss default
    projection_dim: int = 128
    seed: int = 0

    def __post_init__(self):
        for name in ("epochs", "batch_size", "projection_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size: SimCLR needs at least 2 images per batch, got {self.batch_size}")
        for name in ("lr", "temperature"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name}: expected a positive number, got {value!r}")


class SimCLR(torch.nn.Module):
    def __init__(self, config: SimCLRConfig, image_shape: tuple[int, int, int]):
        super().__init__()
        from lightly.models.modules import SimCLRProjectionHead
        self.encoder = build_model(config.arch, num_classes=1, in_channels=image_shape[0])
        with torch.no_grad():
            dim = self.encoder.eval().features(torch.zeros(1, *image_shape)).shape[1]
        self.head = SimCLRProjectionHead(dim, dim, config.projection_dim)

    def forward(self, x):
        return self.head(self.encoder.features(x))


def _normalise(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(CIFAR_MEAN, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(CIFAR_STD, device=x.device).view(1, -1, 1, 1)
    return (x - mean) / std


def _backbone(model: SimCLR, state: dict) -> Backbone:
    return features_backbone(model.encoder, f"simclr-{state['config']['arch']}",
                             state["image_shape"],
                             config={"ssl": state["config"], "data_sha256": state["data_sha256"]})


def load_simclr(path: str | os.PathLike) -> tuple[Backbone, dict]:
    """(backbone, checkpoint) from a SimCLR checkpoint; an unfinished one is an error."""
    state = load_checkpoint(path)
    if state.get("format") != FORMAT:
        raise ValueError(f"backbone: {path} is not a SimCLR checkpoint of poisonkit ({FORMAT})")
    if state["epoch"] < state["config"]["epochs"]:
        raise ValueError(f"backbone: {path} is unfinished ({state['epoch']}/{state['config']['epochs']} "
                         "epochs); run train_simclr on it to resume")
    model = SimCLR(SimCLRConfig(**state["config"]), tuple(state["image_shape"]))
    model.load_state_dict(state["model"])
    return _backbone(model, state), state


def train_simclr(images: torch.Tensor, checkpoint: str | os.PathLike, config: SimCLRConfig = SimCLRConfig(),
                 device: str | torch.device = "cpu", checkpoint_seconds: float = 60.0,
                 verbose: bool = True) -> tuple[Backbone, dict]:
    """Trains (or resumes, or loads) SimCLR on uint8 NCHW images; returns the backbone and
    the checkpoint dict (its 'losses': mean NT-Xent loss per epoch)."""
    from lightly.loss import NTXentLoss
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images: expected uint8 [N, 3, H, W], got {images.dtype} {tuple(images.shape)}")
    if len(images) < 2:
        raise ValueError(f"images: SimCLR needs at least 2 images, got {len(images)}")
    device = torch.device(device)
    digest = content_digest(images)
    model = SimCLR(config, tuple(images.shape[1:])).to(device)
    steps_per_epoch = max(1, len(images) // config.batch_size)
    opt = torch.optim.SGD(model.parameters(), lr=config.lr * config.batch_size / 256,
                          momentum=config.momentum, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, config.epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(config.seed)
    state = {"format": FORMAT, "config": asdict(config), "data_sha256": digest,
             "image_shape": list(images.shape[1:]), "epoch": 0, "losses": []}
    if os.path.exists(checkpoint):
        old = load_checkpoint(checkpoint)
        if old.get("format") != FORMAT or old["config"] != state["config"] or old["data_sha256"] != digest:
            raise ValueError(f"checkpoint: {checkpoint} was written for other images or settings; "
                             "choose another path or delete it")
        model.load_state_dict(old["model"])
        opt.load_state_dict(old["opt"])
        sched.load_state_dict(old["sched"])
        gen.set_state(old["generator"])
        state.update(epoch=old["epoch"], losses=old["losses"])
    loss_fn = NTXentLoss(temperature=config.temperature)

    def save():
        full = {**state, "model": model.state_dict(), "opt": opt.state_dict(),
                "sched": sched.state_dict(), "generator": gen.get_state()}
        atomic_write(checkpoint, lambda tmp: torch.save(full, tmp))

    last_save = time.monotonic()
    while state["epoch"] < config.epochs:
        model.train()
        order = torch.randperm(len(images), generator=gen)
        total = 0.0
        bar = tqdm(range(steps_per_epoch), desc=f"simclr {state['epoch'] + 1}/{config.epochs}",
                   leave=False, disable=not verbose)
        for step in bar:
            batch = images[order[step * config.batch_size:(step + 1) * config.batch_size]]
            x = batch.to(device).float().div_(255)
            v0, v1 = (_normalise(simclr_views(x, gen)) for _ in range(2))
            loss = loss_fn(model(v0), model(v1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        state["epoch"] += 1
        state["losses"].append(total / steps_per_epoch)
        if verbose:
            tqdm.write(f"simclr epoch {state['epoch']}/{config.epochs}: loss {state['losses'][-1]:.4f}")
        if state["epoch"] == config.epochs or time.monotonic() - last_save >= checkpoint_seconds:
            save()
            last_save = time.monotonic()
    model.eval()
    return _backbone(model.cpu(), state), state
