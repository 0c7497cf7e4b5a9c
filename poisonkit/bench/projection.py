"""project_out benchmark: the orthogonal projection defense (x - Q Q^T x, K = 10) on 512
real CIFAR-10 images (and 32 of them resized to 224x224), CPU, 2 threads, against the plain torch float path a user would
write (convert, matmul, matmul). Run: python -m poisonkit.bench.projection"""
from __future__ import annotations

import os

import torch

from poisonkit import ops

from .common import interleaved_images_per_second, load_cifar_uint8, write_results
from .lowpass import resized

N = 512
N_224 = 32  # a loader-sized batch of 224x224 images
K = 10


def basis(d: int = 3 * 32 * 32, k: int = K, seed: int = 0) -> torch.Tensor:
    """A random orthonormal Q [d, k], laid out as a fitted Projection holds it."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, k, generator=g))
    return q.t().contiguous().t()


def torch_project_out(x: torch.Tensor, Q: torch.Tensor, clamp: bool = False) -> torch.Tensor:
    """The plain torch path: convert to [0, 1] float, c = x Q, x - c Q^T."""
    flat = x.reshape(len(x), -1)
    xf = flat.float().div_(255) if x.dtype == torch.uint8 else flat
    out = xf - (xf @ Q) @ Q.T
    if clamp:
        out = out.mul_(255).round_().clamp_(0, 255).to(torch.uint8)
    return out.reshape(x.shape)


def main(quick: bool = False) -> None:
    torch.set_num_threads(2)
    small = load_cifar_uint8(N)
    rows = []

    def add(case, impls, n):
        for impl, rate in interleaved_images_per_second(impls, n).items():
            rows.append({"case": case, "impl": impl, "images_per_s": round(rate), "batch": n})
            print(f"{case:40s} {impl:34s} {rate:12,.0f} images/s", flush=True)

    for size, n in ((32, N), (224, N_224)):
        x = small if size == 32 else resized(small[:n], size)
        xf = x.float() / 255
        Q = basis(3 * size * size)
        for kind, inp, clamp in [("uint8 -> float32", x, False),
                                 ("float32 -> float32", xf, False),
                                 ("uint8 -> uint8 (clamp)", x, True)]:
            case = f"{kind}, {size}x{size}, K={K}"
            ours = ops.project_out(inp, Q, clamp)
            theirs = torch_project_out(inp, Q, clamp)
            assert (ours.float() - theirs.float()).abs().max() <= (1.0 if clamp else 1e-5), case
            add(case, {"poisonkit project_out": lambda: ops.project_out(inp, Q, clamp),
                       "torch (convert, matmul, matmul)": lambda: torch_project_out(inp, Q, clamp)},
                n)

    write_results("projection", rows, "project_out: orthogonal projection defense, CPU",
                  notes=f"Batches of {N} real CIFAR-10 images at 32x32 and {N_224} of them "
                        f"resized bilinearly to 224x224; Q random orthonormal D x {K} (as a "
                        "fitted projection stores it), 2 torch threads, poisonkit and torch "
                        "timed in interleaved rounds. Speedup = poisonkit images/s over the "
                        "row's images/s. Load average (1 min) at the end: "
                        f"{os.getloadavg()[0]:.1f} on 2 cores shared with other jobs.")


if __name__ == "__main__":
    main()
