"""The pixel-constancy signal against a NumPy std per class and pixel, and the verdicts on
real CIFAR-10 images poisoned with OPS (pixel constancy) and LSP (linear separability)."""
import numpy as np
import torch

from poisonkit.inspect import inspect_dataset, pixel_constancy
from poisonkit.poisons.lsp import LSPPoison
from poisonkit.poisons.one_pixel import OnePixelShortcut
from tests.inspect.test_inspect import flags, subset


def test_min_std_matches_numpy(gen):
    x = torch.randint(0, 256, (50, 3, 6, 7), dtype=torch.uint8, generator=gen)
    y = torch.arange(50) % 3
    x[y == 2, :, 4, 5] = 17
    stats = pixel_constancy.pixel_constancy(x, y, 3, batch_size=16)
    for k in range(3):
        std = np.sqrt(x[y == k].double().numpy().var(0).mean(0))  # [H, W]
        assert np.isclose(stats["min_std"][k], std.min(), rtol=1e-9)
        assert stats["min_std_pixel"][k] == list(np.unravel_index(std.argmin(), std.shape))
    assert stats["min_std"][2] == 0 and stats["min_std_pixel"][2] == [4, 5]
    floats = pixel_constancy.pixel_constancy(x.float() / 255, y, 3)
    assert np.allclose(floats["min_std"], stats["min_std"], atol=1e-4)


def test_ops_is_flagged_by_pixel_constancy_and_clean_is_not(cifar):
    x, y = subset(cifar)
    clean = inspect_dataset(x, y, progress=False)["signals"]["pixel_constancy"]
    assert not clean["verdict"]["flagged"] and clean["median_min_std"] > 10 * pixel_constancy.FLAG_MIN_STD
    poisoned = OnePixelShortcut.search(x, y, 10).poison_batch(x, y, torch.arange(len(y)))
    report = inspect_dataset(poisoned, y, progress=False)
    assert flags(report)["pixel_constancy"] and report["signals"]["pixel_constancy"]["median_min_std"] == 0
    assert report["signals"]["pixel_constancy"]["verdict"]["defenses"]


def test_lsp_is_flagged_by_linear_separability(cifar):
    x, y = subset(cifar)
    poisoned = LSPPoison(10, key=4).poison_batch(x, y, torch.arange(len(y)))
    f = flags(inspect_dataset(poisoned, y, progress=False))
    assert f["linear_separability"] and not f["pixel_constancy"] and not f["border"]
