"""Feature extractors for attribution: a Backbone maps images to feature vectors and knows
the image shape it expects and a fingerprint of everything that determines its output
(the embedding cache's key). Sources: raw pixels, a SimCLR checkpoint (ssl.py), a
supervised checkpoint (supervised.py: the penultimate layer), or a torchvision / timm
architecture with weights from a local file (never a hub download)."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from torch import nn

from ..eval.augment import CIFAR_MEAN, CIFAR_STD

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class Backbone(nn.Module):
    """features(x): float [0, 1] NCHW -> [N, D] (not normalised; embed.py L2-normalises).

    image_shape: the (C, H, W) the backbone was trained on, or None (any size).
    config: what, beside the weights, determines the output (kept in the fingerprint)."""

    def __init__(self, net: nn.Module, name: str, image_shape: tuple[int, int, int] | None,
                 mean=CIFAR_MEAN, std=CIFAR_STD, config: dict | None = None):
        super().__init__()
        self.net, self.name = net, name
        self.image_shape = tuple(image_shape) if image_shape is not None else None
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        self.config = {"name": name, "image_shape": self.image_shape, "mean": list(mean),
                       "std": list(std), **(config or {})}

    def check_shape(self, shape, what: str) -> None:
        """Raises naming `what` unless images of shape (..., C, H, W) fit this backbone."""
        shape = tuple(shape)[-3:]
        expected = self.image_shape
        if expected is None:
            expected = (len(self.config["mean"]), None, None)
        if len(shape) != 3 or any(e is not None and e != s for e, s in zip(expected, shape)):
            want = "x".join("any" if e is None else str(e) for e in expected)
            raise ValueError(f"{what}: images of shape {'x'.join(map(str, shape))} (CxHxW) do not "
                             f"fit the backbone {self.name!r}, which expects {want}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.net((x - self.mean) / self.std), 1)

    def fingerprint(self) -> str:
        """sha256 of the config and every weight and buffer (names, shapes, bytes)."""
        h = hashlib.sha256(json.dumps(self.config, sort_keys=True, default=str).encode())
        for name, t in sorted(self.net.state_dict().items()):
            t = t.detach().cpu().contiguous()
            h.update(f"{name} {tuple(t.shape)} {t.dtype};".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        return h.hexdigest()


class _Features(nn.Module):
    """A model's penultimate layer through its features() method."""

    def __init__(self, model: nn.Module):
        super().__init__()
        if not callable(getattr(model, "features", None)):
            raise ValueError(f"backbone: {type(model).__name__} has no features() method "
                             "(the penultimate-layer accessor of poisonkit.eval.models)")
        self.model = model

    def forward(self, x):
        return self.model.features(x)


def pixel_backbone(image_shape: tuple[int, int, int]) -> Backbone:
    """Raw pixels, standardised per channel: the pixel-space nearest-neighbour baseline."""
    return Backbone(nn.Identity(), "pixels", image_shape)


def features_backbone(model: nn.Module, name: str, image_shape, config: dict | None = None) -> Backbone:
    """The penultimate features of a poisonkit.eval model (eval mode: BatchNorm statistics)."""
    return Backbone(_Features(model).eval(), name, image_shape, config=config)


def load_checkpoint(path: str | os.PathLike, what: str = "backbone") -> dict:
    """A torch checkpoint as a dict, or an error naming `what` and the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what}: no such weights file {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and torch errors alike: the file is not readable
        first = (str(e).strip().splitlines() or [""])[0]
        raise ValueError(f"{what}: cannot read weights file {path} ({type(e).__name__}: {first})") from None
    if not isinstance(state, dict):
        raise ValueError(f"{what}: {path} holds a {type(state).__name__}, expected a state dict")
    return state


def _strip_head(model: nn.Module) -> None:
    """Replaces a torchvision classifier's last layer by Identity (features, not logits)."""
    for attr in ("fc", "head", "heads", "classifier"):
        head = getattr(model, attr, None)
        if head is None:
            continue
        if isinstance(head, nn.Sequential) and len(head):
            head[-1] = nn.Identity()
        else:
            setattr(model, attr, nn.Identity())
        return
    raise ValueError(f"backbone: cannot find the classifier of {type(model).__name__} "
                     "(expected an fc, head, heads or classifier attribute)")


def pretrained_backbone(library: str, arch: str, weights: str | os.PathLike,
                        image_shape: tuple[int, int, int] | None = None) -> Backbone:
    """A torchvision or timm architecture with weights from a local file (a state dict,
    as torch.save(model.state_dict()) writes), its classifier removed. Offline: the model
    is built without weights and the file is loaded into it. ImageNet normalisation."""
    state = load_checkpoint(weights)
    state = state.get("state_dict", state)
    if library == "torchvision":
        import torchvision
        try:
            model = torchvision.models.get_model(arch, weights=None)
        except ValueError as e:
            raise ValueError(f"backbone: unknown torchvision model {arch!r} ({e})") from None
    elif library == "timm":
        try:
            import timm
        except ImportError:
            raise ValueError("backbone: timm is not installed (pip install timm); "
                             "torchvision:ARCH:WEIGHTS works without it") from None
        model = timm.create_model(arch, pretrained=False)
    else:
        raise ValueError(f"backbone: expected library 'torchvision' or 'timm', got {library!r}")
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"backbone: weights file {weights} does not fit {library} {arch}: "
                         f"{str(e).splitlines()[0]}") from None
    _strip_head(model)
    return Backbone(model.eval(), f"{library}:{arch}", image_shape, IMAGENET_MEAN, IMAGENET_STD)
