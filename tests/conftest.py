"""Shared fixtures: real CIFAR-10 images from $POISONKIT_DATA (or ../shared/data), seeded
generators, the requires_cuda marker. Tests needing real data or the DALI plugin skip with
a reason when it is absent, except on a machine with a GPU: there the CUDA tests must run,
so a missing file fails them loudly instead (`benchmarks/gpu_check.sh`)."""
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
        skip_or_fail(f"real CIFAR-10 subset not found at {path} (set POISONKIT_DATA)")
    from poisonkit.data import load_npz
    return load_npz(path)


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)


def skip_or_fail(reason: str, allow_module_level: bool = False) -> None:
    """Skips without a GPU; with one, fails: the CUDA tests must not vanish silently."""
    if torch.cuda.is_available():
        pytest.fail(f"{reason} -- required on a machine with a GPU", pytrace=False)
    pytest.skip(reason, allow_module_level=allow_module_level)


# Tests that need a CUDA device; `pytest -m requires_cuda` selects them (gpu_check.sh).
requires_cuda = pytest.mark.requires_cuda


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (run on the device machine)")
    for item in items:
        if "requires_cuda" in item.keywords:
            item.add_marker(skip)
