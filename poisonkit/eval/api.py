"""evaluate(): the harness from Python with the user's own model (users ask 'does this
poison / defense hold for *my* training pipeline?')."""
from __future__ import annotations

import itertools
import os
from typing import Callable, Iterable

from torch import nn

from ..data import ImageDataset, load_dataset
from .run import check_conditions, check_run_options, run_condition, run_matrix
from .train import TrainConfig


def evaluate(model_factory: str | Callable[..., nn.Module], data: ImageDataset | str | None = None,
             poisons: Iterable[str] = ("none",), defenses: Iterable[str] = ("none",),
             epochs: int = 10, config: TrainConfig | None = None, out: str | os.PathLike | None = None,
             protocol: str | None = None, probe: str | None = None, device: str = "auto",
             verbose: bool = False) -> list[dict]:
    """Trains model_factory(num_classes=..., in_channels=...) on every (poison, defense)
    pair and returns the run records (peak/final clean test accuracy, per-epoch history,
    protocol, DFR when probe='dfr'). data: an ImageDataset or a load_dataset spec.
    config overrides epochs. out: also write the report folder there (resumable)."""
    conditions = list(itertools.product(list(poisons), list(defenses)))
    check_conditions(conditions)
    check_run_options(protocol, probe)
    config = config or TrainConfig(epochs=epochs)
    data = data if isinstance(data, ImageDataset) else load_dataset(data)
    if out is not None:
        return run_matrix(conditions, data, out, model=model_factory, config=config, device=device,
                          resume=True, verbose=verbose, protocol=protocol, probe=probe)
    return [run_condition(data, poison, defense, model_factory, config, device, verbose=verbose,
                          protocol=protocol, probe=probe)[0] for poison, defense in conditions]
