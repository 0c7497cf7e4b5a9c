"""AR perturbation generation: poisonkit's ar_generate (CPU, 2 threads) against the
reference's per-pixel Python loop (a grouped 3x3 conv2d per pixel, as the official code
generates), measured in the same run. `python -m poisonkit.bench.ar`."""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from poisonkit import ops
from poisonkit.poisons.ar import sample_coefficients
from poisonkit.transforms import ARPoison

from .common import images_per_second, load_cifar_uint8, write_results

# (case, size, crop, batch for poisonkit, images for the reference loop)
CASES = [("32x32x3, crop 4", 32, 4, 1024, 3), ("96x96x3, crop 4", 96, 4, 256, 1),
         ("224x224x3, crop 2", 224, 2, 64, 1)]


def reference_loop(coeffs: torch.Tensor, size: int, crop: int, eps: float = 1.0) -> torch.Tensor:
    """One perturbation the way the reference computes it: a fresh randn canvas, then one
    grouped conv2d per pixel in raster order, crop, L2 scaling."""
    channels = coeffs.shape[0]
    x = torch.randn(channels, size + crop, size + crop)
    weight = coeffs.clone().unsqueeze(1)  # [C, 1, 3, 3], tap (2,2) is 0
    for i in range(size + crop - 2):
        for j in range(size + crop - 2):
            window = x[:, i:i + 3, j:j + 3].unsqueeze(0)
            x[:, i + 2, j + 2] = F.conv2d(window, weight, groups=channels).flatten()
    x = x[:, crop:, crop:]
    return eps * x / x.norm(p=2)


def reference_images_per_second(coeffs: torch.Tensor, size: int, crop: int, n: int) -> float:
    """Timed on one thread: its ops are far too small to parallelise, and on a busy
    machine a second thread's OpenMP barriers make it many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.perf_counter()
        for _ in range(n):
            reference_loop(coeffs, size, crop)
        return n / (time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)


def main(quick: bool = False) -> None:
    torch.set_num_threads(2)
    coeffs = sample_coefficients(10, seed=0, progress=False).coeffs
    rows = []
    for case, size, crop, batch, ref_images in CASES:
        labels, indices = torch.arange(batch) % 10, torch.arange(batch)
        ours = images_per_second(
            lambda: ops.ar_generate(coeffs, labels, indices, 1, size, size, crop, 1.0, 2), batch)
        rows.append({"case": case, "impl": "poisonkit ar_generate (CPU)", "images_per_s": ours,
                     "batch": batch})
        ref = reference_images_per_second(coeffs[0], size, crop, 1 if quick else ref_images)
        rows.append({"case": case, "impl": "reference per-pixel loop (PyTorch)",
                     "images_per_s": ref, "batch": 1, "images_timed": ref_images})
        if torch.cuda.is_available():
            c, lab, idx = coeffs.cuda(), labels.cuda(), indices.cuda()
            gpu = images_per_second(lambda: ops.ar_generate(c, lab, idx, 1, size, size, crop, 1.0, 2),
                                    batch)
            rows.append({"case": case + " (CUDA)", "impl": "poisonkit ar_generate (CUDA)",
                         "images_per_s": gpu, "batch": batch})
    # The whole transform on a stored uint8 batch: generate, add, clamp, round.
    poison = ARPoison(coeffs, key=1)
    images = load_cifar_uint8(1024)
    labels, indices = torch.arange(1024) % 10, torch.arange(1024)
    rows.append({"case": "32x32x3 uint8, ARPoison transform",
                 "impl": "poisonkit ARPoison (CPU)",
                 "images_per_s": images_per_second(lambda: poison(images, labels, indices), 1024),
                 "batch": 1024})
    # One sample per call, as a Dataset's __getitem__ runs it in each DataLoader worker.
    rows.append({"case": "32x32x3 uint8, ARPoison per sample",
                 "impl": "poisonkit ARPoison (CPU, 1 sample/call)",
                 "images_per_s": images_per_second(lambda: poison(images[0], 3, 5), 1),
                 "batch": 1})
    write_results("ar", rows, "AR perturbation generation (images/s)",
                  notes="poisonkit CPU rows: 2 torch threads. The reference loop is timed on a few "
                        "images, one thread (batch 1, as the official code generates). Target: >= 50,000 images/s "
                        "at 32x32x3, crop 4.")


if __name__ == "__main__":
    main()
