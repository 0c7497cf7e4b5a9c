"""project_out benchmark: the orthogonal projection defense (x - Q Q^T x, K = 10) on 512
real CIFAR-10 images, CPU, 2 threads, against the plain torch float path a user would
write (convert, matmul, matmul). Run: python -m poisonkit.bench.projection"""
from __future__ import annotations

import torch

from poisonkit import ops

from .common import images_per_second, load_cifar_uint8, write_results

N = 512
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
    x = load_cifar_uint8(N)
    xf = x.float() / 255
    Q = basis()
    rows = []

    def add(case, impl, fn):
        rate = images_per_second(fn, N)
        rows.append({"case": case, "impl": impl, "images_per_s": round(rate), "batch": N})
        print(f"{case:32s} {impl:34s} {rate:12,.0f} images/s", flush=True)

    for case, inp, clamp in [("uint8 -> float32, 32x32, K=10", x, False),
                             ("float32 -> float32, 32x32, K=10", xf, False),
                             ("uint8 -> uint8 (clamp), 32x32, K=10", x, True)]:
        ours = ops.project_out(inp, Q, clamp)
        theirs = torch_project_out(inp, Q, clamp)
        assert (ours.float() - theirs.float()).abs().max() <= (1.0 if clamp else 1e-5), case
        add(case, "poisonkit project_out", lambda: ops.project_out(inp, Q, clamp))
        add(case, "torch (convert, matmul, matmul)", lambda: torch_project_out(inp, Q, clamp))

    write_results("projection", rows, "project_out: orthogonal projection defense, CPU",
                  notes=f"Batch of {N} real CIFAR-10 images, Q random orthonormal 3072 x {K} "
                        "(as a fitted projection stores it), 2 torch threads. Speedup = "
                        "poisonkit images/s over the row's images/s.")


if __name__ == "__main__":
    main()
