"""Shared fixtures: real CIFAR-10 images from $POISONKIT_DATA (or ../shared/data), seeded
generators. Tests needing real data skip with a reason when the file is absent."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cifar10-10k.npz"


def cifar_path() -> Path:
    return Path(os.environ.get("POISONKIT_DATA", DEFAULT_DATA))


@pytest.fixture(scope="session")
def cifar():
    """dict of tensors: x_train uint8 [10000, 3, 32, 32], y_train int64, x_test, y_test."""
    path = cifar_path()
    if not path.is_file():
        pytest.skip(f"real CIFAR-10 subset not found at {path} (set POISONKIT_DATA)")
    from poisonkit.data import load_npz
    return load_npz(path)


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)


requires_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device (run on the device machine)")
