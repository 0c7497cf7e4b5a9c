"""CUDA: convolution-based unlearnable datasets (Sadasivan et al., CVPR 2023).

Each class k gets a random non-negative 3x3 kernel; every image of class k is blurred with
it (depthwise, zero padding), divided by its own global max and stored as uint8 with
truncation. The kernels are drawn exactly as the official code does, so seed 0 gives the
published kernels.
"""
from __future__ import annotations

import numpy as np
import torch

from .. import ops
from .base import Poison


def class_kernels(num_classes: int = 10, blur_parameter: float = 0.3, kernel_size: int = 3,
                  seed: int = 0, center_parameter: float | None = 1.0) -> torch.Tensor:
    """The per-class kernels, float32 [num_classes, kernel_size, kernel_size].

    Same draws in the same order as the reference (np.random.seed(seed); per class:
    uniform(0, blur_parameter, (3, 1, k, k)), then one tap set to center_parameter at
    (randint(k), randint(k))). The reference copies channel 0's kernel to all channels,
    so one kernel per class is returned and applied to every channel.
    """
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes: expected a positive int, got {num_classes!r}")
    if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0 or kernel_size > 7:
        raise ValueError(f"kernel_size: expected an odd int from 1 to 7, got {kernel_size!r}")
    if not np.isfinite(blur_parameter) or blur_parameter <= 0:
        raise ValueError(f"blur_parameter: expected a positive finite number, got {blur_parameter!r}")
    if center_parameter is not None and not np.isfinite(center_parameter):
        raise ValueError(f"center_parameter: expected a finite number or None, got {center_parameter!r}")
    rng = np.random.RandomState(seed)  # the legacy global-seed sequence, without touching it
    kernels = []
    for _ in range(num_classes):
        w = rng.uniform(low=0, high=blur_parameter, size=(3, 1, kernel_size, kernel_size))
        if center_parameter is not None:
            rows, cols = w[0][0].shape
            w[0, 0, rng.randint(rows), rng.randint(cols)] = center_parameter
        kernels.append(w[0, 0])
    # The reference copies the float64 draws into a float32 conv weight.
    return torch.tensor(np.stack(kernels), dtype=torch.float32)


def blur_images(x: torch.Tensor, labels, kernels: torch.Tensor) -> torch.Tensor:
    """x (CHW with a scalar label, or NCHW with labels [N]) blurred with kernels[label],
    zero padding, divided by each image's max; uint8 output truncated (the reference)."""
    weights = kernels.to(x.device)[torch.as_tensor(labels, device=x.device).reshape(-1)]
    return ops.filter2d(x, weights[0] if x.dim() == 3 else weights, padding="zeros",
                        normalize="max", rounding="truncate")


class ClasswiseBlur(Poison):
    """The CUDA poison: blur each image with its class's kernel, divide by the image's max.

    A Poison (see poisonkit.poisons.base): call on a sample ``(image, label)``, a dict
    sample, or a batch ``(images, labels)``; the output keeps the input's structure. uint8
    output is truncated, as the reference stores it; float output is the normalised value
    in [0, 1]. Kernels: ``self.kernels`` [num_classes, k, k], drawn as the reference does
    from ``seed`` (seed 0 gives the published kernels). The reference pads by 1, so only
    kernel_size 3 keeps its exact geometry; other sizes here keep the image size.
    ``key`` only selects the poisoned subset when ratio < 1.
    """

    def __init__(self, num_classes: int = 10, blur_parameter: float = 0.3, kernel_size: int = 3,
                 seed: int = 0, *, ratio: float = 1.0, key: int | None = None,
                 labels_getter="default", indices_getter="default"):
        super().__init__(num_classes, ratio=ratio, key=key, labels_getter=labels_getter,
                         indices_getter=indices_getter)
        self.register_buffer("kernels", class_kernels(num_classes, blur_parameter, kernel_size, seed))

    def apply(self, images, labels, indices):
        return blur_images(images, labels, self.kernels)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, kernel_size={self.kernels.shape[-1]}"
