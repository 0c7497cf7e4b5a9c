"""What the poisons crafted by optimisation against a model share (error-minimizing EM,
targeted error-maximizing TAP; DESIGN §3.6): input and parameter checks, a surrogate
model seeded by the key, signed-gradient PGD on whole batches, and a crafting loop made
of units of work whose state (perturbation, model, optimizer, generator, progress) is
checkpointed atomically, so a killed run continues where its last checkpoint left it.
Once crafted, a CraftedPoison is a `Poison` (base.py) like the others: the batch protocol,
v2 calls, and partial poisoning (`ratio`: the perturbation is crafted on the whole set,
then added only to the key-derived subset of samples, as APBench's --ratio).

The perturbation and its checkpoint are the owner's secret: whoever holds them can
subtract the poison. Keep the checkpoint out of any published folder.
"""
from __future__ import annotations

import copy
import hashlib
import math
import os
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.fx.experimental.optimization import fuse
from tqdm import tqdm

from .._io import atomic_write
from ..eval.augment import normalize
from ..eval.models import build_model
from .base import Poison, check_every_class


def check_radius(name: str, value) -> float:
    """A positive finite float (eps and step sizes, in [0, 1] image units)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: expected a positive finite number, got {value!r}")
    return float(value)


def check_count(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return value


def key_seed(key: int, stream: str) -> int:
    """A 63-bit seed for one random stream of a key (surrogate weights, batch order...)."""
    digest = hashlib.sha256(f"poisonkit:{stream}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def check_dataset(images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Validates a crafting set (uint8 [0, 255] or float [0, 1] NCHW, int64 labels with every
    class present); returns the images as float32 [0, 1]."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or len(images) == 0:
        raise ValueError(f"images: expected a non-empty NCHW tensor, got "
                         f"{getattr(images, 'shape', type(images).__name__)}")
    if images.dtype == torch.uint8:
        x = images.float().div_(255)
    elif images.dtype == torch.float32:
        if not torch.isfinite(images).all() or images.min() < 0 or images.max() > 1:
            raise ValueError("images: float32 images must be finite and in [0, 1]")
        x = images.clone()
    else:
        raise TypeError(f"images: expected uint8 or float32, got {images.dtype}")
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64 or tuple(
            labels.shape) != (len(images),):
        raise ValueError(f"labels: expected int64 of shape ({len(images)},), got "
                         f"{getattr(labels, 'dtype', None)} {tuple(getattr(labels, 'shape', ()))}")
    check_every_class(labels, num_classes, "a crafted poison needs images of every class")
    return x.contiguous()


def build_surrogate(name: str, num_classes: int, image_shape: tuple[int, int, int],
                    key: int) -> nn.Module:
    """The named model with weights drawn from the key; raises ValueError naming `model`
    when it cannot classify images of image_shape into num_classes."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(key_seed(key, "surrogate"))
        model = build_model(name, num_classes, image_shape[0])
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(2, *image_shape))
    except RuntimeError as e:
        raise ValueError(f"model: {name!r} does not fit images of shape {tuple(image_shape)}: "
                         f"{e}") from None
    if tuple(out.shape) != (2, num_classes):
        raise ValueError(f"model: {name!r} gives outputs of shape {tuple(out.shape[1:])} for "
                         f"images of shape {tuple(image_shape)}; expected ({num_classes},)")
    return model


def resolve_device(device: str | torch.device) -> torch.device:
    from ..eval.run import resolve_device as resolve
    return resolve(device) if isinstance(device, str) else device


def project(x: torch.Tensor, delta: torch.Tensor, eps: float) -> torch.Tensor:
    """delta clipped to the L-inf ball of radius eps, then so that x + delta is in [0, 1]."""
    return (x + delta.clamp(-eps, eps)).clamp_(0, 1) - x


def attack_model(model: nn.Module) -> nn.Module:
    """The model as the noise updates use it (it is fixed while they run): a copy in eval
    mode, weights frozen (no graph is kept for weight gradients), each BatchNorm folded
    into the convolution before it (torch.fx fuse: the same function up to float rounding,
    one op fewer per layer forward and backward). A model torch.fx cannot trace is only
    copied and frozen."""
    model.eval()
    try:
        attacker = fuse(model)
    except Exception:   # data-dependent control flow: fx cannot trace it; fusing is optional
        attacker = copy.deepcopy(model)
    attacker.requires_grad_(False)
    return attacker.to(memory_format=torch.channels_last)


def descend(model: nn.Module, x: torch.Tensor, y: torch.Tensor, delta: torch.Tensor, eps: float,
            step: float, steps: int, augment: Callable | None = None,
            amp: bool = False) -> torch.Tensor:
    """`steps` signed-gradient steps lowering cross_entropy(model(x + delta), y) over delta,
    projected after each step (the PGD of both reference codes; EM passes the true labels,
    TAP the target ones). Gradients flow to delta only, not to the model's weights."""
    delta = project(x, delta, eps)
    for _ in range(steps):
        delta.requires_grad_(True)
        z = x + delta
        if augment is not None:
            z = augment(z)
        with torch.autocast(x.device.type, torch.bfloat16, enabled=amp):
            logits = model(prep(z))
        grad, = torch.autograd.grad(F.cross_entropy(logits.float(), y), delta)
        delta = project(x, delta.detach() - step * grad.sign(), eps)
    return delta.detach()


def prep(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] images -> the model's input (normalised, channels_last as the harness)."""
    return normalize(x).contiguous(memory_format=torch.channels_last)


def train_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
               amp: bool = False, clip: float | None = None) -> float:
    model.train()
    with torch.autocast(x.device.type, torch.bfloat16, enabled=amp):
        logits = model(prep(x))
    loss = F.cross_entropy(logits.float(), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if clip is not None:
        nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    return loss.item()


@torch.inference_mode()
def evaluate(model: nn.Module, batches, amp: bool = False) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of the model in eval mode over (x, y) batches."""
    model.eval()
    correct, loss, seen = 0, 0.0, 0
    for x, y in batches:
        with torch.autocast(x.device.type, torch.bfloat16, enabled=amp):
            logits = model(prep(x)).float()
        correct += (logits.argmax(1) == y).sum().item()
        loss += F.cross_entropy(logits, y, reduction="sum").item()
        seen += len(y)
    return correct / seen, loss / seen


def data_digest(images: torch.Tensor, labels: torch.Tensor) -> str:
    """SHA-256 of the crafting set, so a checkpoint is never resumed on other data."""
    h = hashlib.sha256()
    h.update(str(tuple(images.shape)).encode())
    h.update(images.contiguous().numpy().tobytes())
    h.update(labels.contiguous().numpy().tobytes())
    return h.hexdigest()


class CraftedPoison(Poison):
    """A perturbation crafted on a training set, then added to its images: `delta`
    (float32, [N, C, H, W] per sample or [K, C, H, W] per class, within eps).

    Subclasses define the units of work: `_start(state)` fills a fresh state,
    `_advance(state)` does one unit and returns True when crafting is finished. After
    each unit the state is checkpointed to `state` (a path) when `checkpoint_seconds` have
    passed since the last write, and always at the end; `craft` resumes from it.
    """
    method = ""
    per_class = False

    def __init__(self, num_classes: int, eps: float, step: float, steps: int, lr: float, *,
                 model: str = "small", batch_size: int = 512, key: int | None = None,
                 device: str | torch.device = "auto", state: str | os.PathLike | None = None,
                 checkpoint_seconds: float = 60.0, progress: bool = True, ratio: float = 1.0,
                 labels_getter="default", indices_getter="default"):
        """eps, step (PGD step size) in [0, 1] units; steps PGD steps per noise update; lr
        of the model's SGD; model 'small' (CPU) or 'resnet18' (paper scale); state: a
        private checkpoint path (resumable); key: the owner's secret (128 random bits by
        default); ratio: the key-derived share of samples the crafted noise is added to
        (it is crafted on all of them)."""
        check_count("num_classes", num_classes, 2)
        super().__init__(num_classes, ratio=ratio, key=key, labels_getter=labels_getter,
                         indices_getter=indices_getter)
        self.eps = check_radius("eps", eps)
        self.step = check_radius("step", step)
        self.steps = check_count("steps", steps)
        self.lr = check_radius("lr", lr)
        self.model_name = model
        self.batch_size = check_count("batch_size", batch_size)
        self.device = resolve_device(device)
        self.state_path = Path(state) if state is not None else None
        if isinstance(checkpoint_seconds, bool) or not isinstance(checkpoint_seconds, (int, float)) \
                or not checkpoint_seconds >= 0:
            raise ValueError(f"checkpoint_seconds: expected a number >= 0, got {checkpoint_seconds!r}")
        self.checkpoint_seconds = float(checkpoint_seconds)
        self.progress = progress
        self.delta: torch.Tensor | None = None
        self.history: list[dict] = []

    @property
    def needs_indices(self) -> bool:
        """Sample-wise noise is looked up by sample index; class-wise by label."""
        return not self.per_class

    @property
    def amp(self) -> bool:
        return self.device.type == "cuda"

    def settings(self) -> dict:
        """What determines the result besides the key and the data (checked on resume)."""
        return {"eps": self.eps, "step": self.step, "steps": self.steps, "lr": self.lr,
                "model": self.model_name, "batch_size": self.batch_size}

    def stopping(self) -> dict:
        """When crafting stops: not checked on resume, so a run can be extended or cut short."""
        return {}

    def _finished(self, state: dict) -> bool:
        """Whether a loaded state is finished under this object's stopping rule."""
        return bool(state["done"])

    # -- crafting ---------------------------------------------------------------------
    def craft(self, images: torch.Tensor, labels: torch.Tensor) -> "CraftedPoison":
        """Crafts (or resumes crafting) the perturbation of (images, labels); returns self."""
        x = check_dataset(images, labels, self.num_classes)
        self.model = build_surrogate(self.model_name, self.num_classes, tuple(x.shape[1:]), self.key)
        self._attacker = None   # a subclass's cached attack_model(self.model), if it keeps one
        fingerprint = {"method": self.method, "parameters": self.settings(),
                       "key_sha256": hashlib.sha256(str(self.key).encode()).hexdigest(),
                       "data_sha256": data_digest(images, labels)}
        dev = self.device
        self.x, self.y = x.to(dev), labels.to(dev)
        self.model.to(dev, memory_format=torch.channels_last)
        self.generator = torch.Generator().manual_seed(key_seed(self.key, "crafting"))
        state = self._load(fingerprint)
        if state is None:
            state = {"unit": 0, "done": False, "history": []}
            self._start(state)
        else:
            self.model.load_state_dict(state["model"])
            self.generator.set_state(state["generator"])
            self._resume(state)
            state["done"] = self._finished(state)
        last_save = time.monotonic()
        with tqdm(desc=f"craft {self.method}", unit="unit", initial=state["unit"],
                  disable=not self.progress) as bar:
            while not state["done"]:
                state["done"] = bool(self._advance(state))
                state["unit"] += 1
                bar.update(1)
                if state["history"]:
                    bar.set_postfix(state["history"][-1])
                if state["done"] or time.monotonic() - last_save >= self.checkpoint_seconds:
                    self._save(state, fingerprint)
                    last_save = time.monotonic()
        self.delta = state["delta"].detach().float().cpu()
        self.history = list(state["history"])
        del self.x, self.y
        return self

    def _optimizer(self) -> torch.optim.Optimizer:
        """The optimizer of self.model, fresh (its state is checkpointed)."""
        raise NotImplementedError

    def _resume(self, state: dict) -> None:
        self.opt = self._optimizer()
        self.opt.load_state_dict(state["optimizer"])

    def _start(self, state: dict) -> None:
        raise NotImplementedError

    def _advance(self, state: dict) -> bool:
        raise NotImplementedError

    def _batches(self, order: torch.Tensor | None = None):
        """Index batches over the crafting set (in order, or in `order`)."""
        n = len(self.x)
        order = torch.arange(n) if order is None else order
        for start in range(0, n, self.batch_size):
            yield order[start:start + self.batch_size].to(self.device)

    def _load(self, fingerprint: dict) -> dict | None:
        path = self.state_path
        if path is None or not path.exists():
            return None
        state = torch.load(path, weights_only=True, map_location=self.device)
        stored = dict(state.get("fingerprint", {}))
        stored["parameters"] = {k: v for k, v in stored.get("parameters", {}).items()
                                if k not in self.stopping()}
        if stored != fingerprint:
            raise ValueError(f"state: {path} was written for other data, key or parameters "
                             f"({state.get('fingerprint', {}).get('parameters')}); give a new path")
        return state

    def _save(self, state: dict, fingerprint: dict) -> None:
        if self.state_path is None:
            return
        payload = {**state, "model": self.model.state_dict(),
                   "generator": self.generator.get_state(), "fingerprint": fingerprint}
        payload.update(self._extra_state())
        atomic_write(self.state_path, lambda tmp: torch.save(payload, tmp))

    def _extra_state(self) -> dict:
        return {"optimizer": self.opt.state_dict()}

    # -- applying ---------------------------------------------------------------------
    def perturbation(self, labels: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """float32 [N, C, H, W]: the perturbation of each (label, sample index)."""
        if self.delta is None:
            raise RuntimeError(f"{type(self).__name__}: call craft(images, labels) first")
        rows = labels if self.per_class else indices
        name = "labels" if self.per_class else "indices"
        if not isinstance(rows, torch.Tensor) or rows.dtype != torch.int64 or rows.dim() != 1:
            raise ValueError(f"{name}: expected an int64 [N] tensor")
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self.delta)):
            raise ValueError(f"{name}: expected values in [0, {len(self.delta)}), got "
                             f"[{int(rows.min())}, {int(rows.max())}]")
        return self.delta[rows.cpu()]

    def apply(self, images: torch.Tensor, labels: torch.Tensor,
              indices: torch.Tensor | None) -> torch.Tensor:
        """images (uint8 [0, 255] or float32 [0, 1], NCHW, checked by poison_batch) plus
        their perturbation, clamped to [0, 1]; uint8 rounded to nearest. indices: positions
        in the crafting set (unused by class-wise noise)."""
        delta = self.perturbation(labels, indices)
        if delta.shape[1:] != images.shape[1:]:
            raise ValueError(f"images: expected images of shape {tuple(delta.shape[1:])}, got "
                             f"{tuple(images.shape[1:])}")
        delta = delta.to(images.device)
        if images.dtype == torch.uint8:
            out = (images.float() / 255 + delta).clamp_(0, 1)
            return out.mul_(255).round_().to(torch.uint8)
        return (images + delta).clamp_(0, 1)
