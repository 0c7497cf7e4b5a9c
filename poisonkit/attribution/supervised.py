"""The supervised comparison: a classifier trained with poisonkit's eval training loop
(poisonkit.eval.train: SGD, crop + flip, the harness protocol), saved as a checkpoint,
read at its penultimate layer for attribution and at its logits for the predicted class."""
from __future__ import annotations

import os
from dataclasses import asdict

import torch

from .._io import atomic_write
from ..data import PoisonedTensorDataset, make_loader
from ..eval.models import NESTEROV, build_model
from ..eval.train import TrainConfig, train
from .backbones import Backbone, features_backbone, load_checkpoint
from .embed import content_digest

FORMAT = "poisonkit-supervised/1"


def train_supervised(images: torch.Tensor, labels: torch.Tensor, num_classes: int,
                     checkpoint: str | os.PathLike | None = None, model: str = "small",
                     config: TrainConfig | None = None, test: tuple[torch.Tensor, torch.Tensor] | None = None,
                     device: str | torch.device = "cpu", verbose: bool = False) -> tuple[torch.nn.Module, dict]:
    """Trains `model` on uint8 NCHW images with the eval harness's loop; writes the
    checkpoint atomically when a path is given. test: (images, labels) measured each epoch
    (default: the first 256 training images, only as a progress signal)."""
    config = config or TrainConfig(epochs=10, nesterov=NESTEROV.get(model, False))
    device = torch.device(device)
    torch.manual_seed(config.seed)
    net = build_model(model, num_classes, images.shape[1]).to(device)
    loader = make_loader(PoisonedTensorDataset(images, labels), config.batch_size, shuffle=True,
                         seed=config.seed)
    test_x, test_y = test if test is not None else (images[:256], labels[:256])
    history = train(net, loader, test_x, test_y, config, device, verbose=verbose, desc="supervised")
    net = net.cpu().eval().to(memory_format=torch.contiguous_format)
    state = {"format": FORMAT, "model": model, "num_classes": num_classes,
             "image_shape": list(images.shape[1:]), "config": asdict(config),
             "data_sha256": content_digest(images), "test_accuracy": history.test_accuracy,
             "state_dict": net.state_dict()}
    if checkpoint is not None:
        atomic_write(checkpoint, lambda tmp: torch.save(state, tmp))
    return net, state


def load_supervised(path: str | os.PathLike) -> tuple[torch.nn.Module, dict]:
    """(classifier in eval mode, checkpoint) from a train_supervised checkpoint."""
    state = load_checkpoint(path)
    if state.get("format") != FORMAT:
        raise ValueError(f"backbone: {path} is not a supervised checkpoint of poisonkit ({FORMAT})")
    net = build_model(state["model"], state["num_classes"], state["image_shape"][0])
    net.load_state_dict(state["state_dict"])
    return net.eval(), state


def supervised_backbone(net: torch.nn.Module, state: dict) -> Backbone:
    return features_backbone(net, f"supervised-{state['model']}", state["image_shape"],
                             config={"data_sha256": state["data_sha256"], "train": state["config"]})


@torch.no_grad()
def class_probabilities(net: torch.nn.Module, images: torch.Tensor,
                        batch_size: int = 512) -> torch.Tensor:
    """Softmax class probabilities [N, K] of uint8 NCHW images under the harness's
    normalisation."""
    from ..eval.protocols import HARNESS
    net.eval()
    out = [net(HARNESS.prep(images[i:i + batch_size].float() / 255)).softmax(1)
           for i in range(0, len(images), batch_size)]
    return torch.cat(out)


def predict(net: torch.nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Predicted classes of uint8 NCHW images under the harness's normalisation."""
    return class_probabilities(net, images, batch_size).argmax(1)
