"""The AR coefficient sets the reference code builds its published poisons with
(github.com/psandovalsegura/autoregressive-poisoning, MIT License, Copyright (c) 2022
Pedro Sandoval), shipped in poisonkit/poisons/data/ as JSON, and a loader for coefficient
files in the reference's own formats.

- 'cifar10-published': RANDOM_3C_AR_PARAMS_RNMR_10 (autoregressive_params.py), which
  create_ar_poisons_3channel.py create_ar_processes() uses for CIFAR-10, STL-10 and SVHN.
- 'cifar100-published': params-classes-100-mr-3.pt (RANDOM_100CLASS_3C_AR_PARAMS_RNMR_3),
  used for CIFAR-100 and ImageNet-100.
Both are [K, 3, 3, 3] float32 (class, channel, 3x3 taps; tap (2,2) zero; each channel's
8 taps sum to 1 up to the source's 4-decimal printing).

ImageNet-100 ('imagenet100-published' preset): images are brought to 224x224 first
(IMAGENET_PREPROCESS: Resize(256), CenterCrop(224)) and perturbed with a 226x226 canvas
cropped by 2. That recipe is issue 16's account of the reference; its ImageNet script is
not among the reference files available to this project, so it is unverified here.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from torchvision.transforms import v2

from .ar import ARCoefficients

DATA = Path(__file__).parent / "data"
IMAGENET_PREPROCESS = v2.Compose([v2.Resize(256), v2.CenterCrop(224)])
PUBLISHED = {"cifar10-published": "ar-cifar10-published.json",
             "cifar100-published": "ar-cifar100-published.json"}


def _from_json(path: Path) -> ARCoefficients:
    payload = json.loads(path.read_text())
    coeffs = torch.tensor(np.asarray(payload["coefficients"], dtype=np.float32)).reshape(payload["shape"])
    meta = {k: payload[k] for k in ("name", "source", "license") if k in payload}
    return ARCoefficients(coeffs, meta)


def published_coefficients(name: str) -> ARCoefficients:
    """A published set by name ('cifar10-published' or 'cifar100-published')."""
    if name not in PUBLISHED:
        raise ValueError(f"published coefficients: expected one of {sorted(PUBLISHED)}, got {name!r}")
    return _from_json(DATA / PUBLISHED[name])


def load_coefficients(path: str | os.PathLike) -> ARCoefficients:
    """Coefficients from a file: poisonkit's JSON or saved ARCoefficients, a NumPy .npy
    [K, C, 3, 3] (as in ../shared/data/ar-published), or the reference's torch.save'd list
    of K [C, 3, 3] tensors (params-classes-100-mr-3.pt). Loaded without unpickling code."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"coefficients: no such file {path}")
    if path.suffix == ".json":
        return _from_json(path)
    if path.suffix == ".npy":
        return ARCoefficients(torch.from_numpy(np.load(path, allow_pickle=False).astype(np.float32)),
                              {"source": str(path.name)})
    payload = torch.load(path, weights_only=True, map_location="cpu")
    if isinstance(payload, dict) and "coeffs" in payload:
        return ARCoefficients(payload["coeffs"], dict(payload.get("metadata", {})))
    if isinstance(payload, (list, tuple)) and payload and all(isinstance(t, torch.Tensor) for t in payload):
        shapes = {tuple(t.shape) for t in payload}
        if len(shapes) != 1 or len(next(iter(shapes))) != 3:
            raise ValueError(f"coefficients: {path} holds tensors of shapes {sorted(shapes)}; "
                             "expected K tensors of one shape [C, 3, 3]")
        return ARCoefficients(torch.stack(list(payload)).float(), {"source": str(path.name)})
    if isinstance(payload, torch.Tensor):
        return ARCoefficients(payload.float(), {"source": str(path.name)})
    raise ValueError(f"coefficients: {path} is neither a tensor, a list of [C, 3, 3] tensors "
                     "nor a saved ARCoefficients")
