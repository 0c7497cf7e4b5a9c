"""Train-time augmentation on whole batches of tensors (on the training device).

crop_flip is RandomCrop(size, padding=4) (zero padding) + RandomHorizontalFlip as
torchvision applies them per image, but as two indexing operations per batch. Its input
may be smaller than the output (the reference RSK+FF pipeline crops 32x32 out of a
30x30 image zero-padded by 4, so every training image gets a black frame of >= 2 px).

strong_augment is the projection step-2 recipe's per-image chain (rotation, affine,
colour jitter) and cutmix its batch mixing (see protocols.PROJECTION_STEP2)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms import v2

# CIFAR-10 channel statistics (the true per-channel std): poisonkit's own harness.
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
# The constants most reference scripts copy (kuangliu/pytorch-cifar): same mean, a smaller std.
REFERENCE_STD = (0.2023, 0.1994, 0.2010)


def crop_flip(x: torch.Tensor, padding: int = 4, generator: torch.Generator | None = None,
              size: tuple[int, int] | None = None) -> torch.Tensor:
    """x: NCHW float. Each image is zero-padded by `padding`, cropped to `size` (default:
    the input's H x W) at a uniformly random offset and flipped left-right with
    probability 1/2. Draws, in this order: all row offsets, all column offsets, all flips."""
    n, c, h, w = x.shape
    oh, ow = size if size is not None else (h, w)
    if h + 2 * padding < oh or w + 2 * padding < ow:
        raise ValueError(f"crop_flip: a {h}x{w} image padded by {padding} is smaller than "
                         f"the crop {oh}x{ow}")
    dev = x.device
    padded = F.pad(x, (padding,) * 4)
    dy = torch.randint(0, h + 2 * padding - oh + 1, (n, 1), generator=generator).to(dev)
    dx = torch.randint(0, w + 2 * padding - ow + 1, (n, 1), generator=generator).to(dev)
    flip = torch.rand(n, 1, generator=generator).to(dev) < 0.5
    cols = torch.arange(ow, device=dev)
    cols = torch.where(flip, ow - 1 - cols, cols) + dx                  # [n, ow]
    rows = torch.arange(oh, device=dev) + dy                            # [n, oh]
    idx = torch.arange(n, device=dev)[:, None, None, None]
    ch = torch.arange(c, device=dev)[None, :, None, None]
    return padded[idx, ch, rows[:, None, :, None], cols[:, None, None, :]]


def normalize(x: torch.Tensor, mean=CIFAR_MEAN, std=CIFAR_STD) -> torch.Tensor:
    """Channel-wise normalisation of NCHW floats in [0, 1] (1 or 3 channels)."""
    m = torch.tensor(mean[: x.shape[1]], device=x.device, dtype=x.dtype)
    s = torch.tensor(std[: x.shape[1]], device=x.device, dtype=x.dtype)
    return (x - m[:, None, None]) / s[:, None, None]


# The projection step-2 chain before its crop and flip, as torchvision transforms on
# float tensors (rotation and affine: nearest interpolation, zero fill; jitter clamps to [0, 1]).
STRONG_AUGMENT = v2.Compose([
    v2.RandomRotation(10),
    v2.RandomAffine(0, shear=10, scale=(0.8, 1.2)),
    v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2),
])


def strong_augment(x: torch.Tensor) -> torch.Tensor:
    """STRONG_AUGMENT on every image of an NCHW float batch separately (torchvision draws
    one set of parameters per call, so a batch call would share them); torch's global RNG."""
    return torch.stack([STRONG_AUGMENT(img) for img in x])


def cutmix_box(height: int, width: int, lam: float, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """The reference's rand_bbox: a box of area ~(1 - lam) centred uniformly, clipped.
    Returns (r1, c1, r2, c2) over (rows, cols); the reference names them W, H but indexes
    dims 2 and 3, which this follows."""
    cut = np.sqrt(1.0 - lam)
    ch, cw = int(height * cut), int(width * cut)
    cy, cx = rng.integers(height), rng.integers(width)
    return (int(np.clip(cy - ch // 2, 0, height)), int(np.clip(cx - cw // 2, 0, width)),
            int(np.clip(cy + ch // 2, 0, height)), int(np.clip(cx + cw // 2, 0, width)))


def cutmix(x: torch.Tensor, y: torch.Tensor, prob: float, beta: float, rng: np.random.Generator):
    """With probability `prob`: paste a box of a shuffled copy of the batch into x (in
    place on a clone). Returns (x, y, y_other, lam) with the loss
    lam * CE(out, y) + (1 - lam) * CE(out, y_other); lam = 1 when not mixed."""
    if beta <= 0 or rng.random() >= prob:
        return x, y, y, 1.0
    lam = rng.beta(beta, beta)
    perm = torch.from_numpy(rng.permutation(len(x))).to(x.device)
    r1, c1, r2, c2 = cutmix_box(x.shape[-2], x.shape[-1], lam, rng)
    x = x.clone()
    x[:, :, r1:r2, c1:c2] = x[perm, :, r1:r2, c1:c2]
    lam = 1.0 - (r2 - r1) * (c2 - c1) / (x.shape[-1] * x.shape[-2])
    return x, y, y[perm], lam


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] or float [0, 1] images -> float32 [0, 1]."""
    return x.float().div_(255) if x.dtype == torch.uint8 else x.float()
