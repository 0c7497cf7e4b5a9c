"""Low-pass (the FF of RSK+FF) throughput on real CIFAR-10 images, CPU, 2 threads.

poisonkit.ops.lowpass against what a user would otherwise run: scipy.fft's batched
dctn/idctn (norm='ortho'; the reference filters with a CPU DCT, one image at a time) and
torch.fft with a disk mask. kornia has no frequency low-pass (its DCT lives inside
kornia.enhance.jpeg_codec_differentiable, 8x8 blocks only), so it is not in the table.
Every implementation takes uint8 NCHW and returns uint8 (conversions included), except
the float32 rows. 224x224 images are real CIFAR-10 images resized bilinearly.

    python -m poisonkit.bench.lowpass
"""
from __future__ import annotations

import os

import numpy as np
import scipy.fft as sfft
import torch
import torch.nn.functional as F

from poisonkit import ops

from .common import interleaved_images_per_second, load_cifar_uint8, write_results

THREADS = 2
KEEP = 0.3


def scipy_dct_lowpass(x: np.ndarray, keep: float = KEEP, workers: int = THREADS) -> np.ndarray:
    """The reference's FF on a batch: float [0, 1], dctn, zero all but the top-left
    int(H * keep) x int(W * keep) block, idctn, clip; uint8 in and out when x is uint8."""
    unit = x.astype(np.float32) / 255 if x.dtype == np.uint8 else x
    h, w = unit.shape[-2:]
    coeffs = sfft.dctn(unit, axes=(-2, -1), norm="ortho", workers=workers)
    coeffs[..., int(h * keep):, :] = 0
    coeffs[..., :, int(w * keep):] = 0
    out = np.clip(sfft.idctn(coeffs, axes=(-2, -1), norm="ortho", workers=workers), 0, 1)
    return (out * 255 + 0.5).astype(np.uint8) if x.dtype == np.uint8 else out


def torch_fft_disk_mask(h: int, w: int, keep: float = KEEP) -> torch.Tensor:
    """rfft2 layout [h, w // 2 + 1]: (2 ky / h)^2 + (2 kx / w)^2 <= keep^2."""
    fy = torch.fft.fftfreq(h, dtype=torch.float64)[:, None] * 2
    fx = torch.fft.rfftfreq(w, dtype=torch.float64)[None, :] * 2
    return (fy ** 2 + fx ** 2 <= keep ** 2 + 1e-9).float()


def torch_fft_lowpass(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    unit = x.float() / 255 if x.dtype == torch.uint8 else x
    out = torch.fft.irfft2(torch.fft.rfft2(unit) * mask, s=unit.shape[-2:]).clamp_(0, 1)
    return out.mul_(255).add_(0.5).to(torch.uint8) if x.dtype == torch.uint8 else out


def resized(x: torch.Tensor, size: int) -> torch.Tensor:
    big = F.interpolate(x.float(), size=(size, size), mode="bilinear", align_corners=False)
    return big.round_().clamp_(0, 255).to(torch.uint8).contiguous()


def run() -> list[dict]:
    torch.set_num_threads(THREADS)
    small = load_cifar_uint8(2048)
    rows = []

    def add(case, impls, n):
        for impl, ips in interleaved_images_per_second(impls, n).items():
            rows.append({"case": case, "impl": impl, "images_per_s": ips})
            print(f"{case:50s} {impl:40s} {ips:12,.0f}")

    for size, n in ((32, 2048), (224, 64)):
        x = small[:n] if size == 32 else resized(small[:n], size)
        xf = (x.float() / 255).contiguous()
        xn, xfn = x.numpy(), xf.numpy()
        mask = torch_fft_disk_mask(size, size)
        add(f"{size}x{size} uint8, DCT square keep 0.3", {
            "poisonkit lowpass(dct, square)": lambda: ops.lowpass(x),
            "scipy.fft dctn/idctn (batched)": lambda: scipy_dct_lowpass(xn)}, n)
        add(f"{size}x{size} float32, DCT square keep 0.3", {
            "poisonkit lowpass(dct, square)": lambda: ops.lowpass(xf),
            "scipy.fft dctn/idctn (batched)": lambda: scipy_dct_lowpass(xfn)}, n)
        add(f"{size}x{size} uint8, FFT disk keep 0.3", {
            "poisonkit lowpass(fft, disk)": lambda: ops.lowpass(x, basis="fft", shape="disk"),
            "torch.fft rfft2/irfft2 + disk mask": lambda: torch_fft_lowpass(x, mask)}, n)
    # 224x224 float32 in small batches and one CHW image per call (a DataLoader worker).
    big = (resized(small[:8], 224).float() / 255).contiguous()
    big_np = big.numpy()
    add("224x224 float32, DCT square keep 0.3, batch 8", {
        "poisonkit lowpass(dct, square)": lambda: ops.lowpass(big),
        "scipy.fft dctn/idctn (batched)": lambda: scipy_dct_lowpass(big_np)}, 8)
    add("224x224 float32, DCT square, one image per call", {
        "poisonkit lowpass(dct, square)": lambda: ops.lowpass(big[0]),
        "scipy.fft dctn/idctn": lambda: scipy_dct_lowpass(big_np[0])}, 1)
    one, one_np = small[0], small[0].numpy()
    add("32x32 uint8, DCT square, one image per call", {
        "poisonkit lowpass(dct, square)": lambda: ops.lowpass(one),
        "scipy.fft dctn/idctn": lambda: scipy_dct_lowpass(one_np)}, 1)
    # One thread each: the per-core speed, less exposed to other jobs on a shared machine.
    torch.set_num_threads(1)
    xn = small.numpy()
    add("32x32 uint8, DCT square keep 0.3, 1 thread", {
        "poisonkit lowpass(dct, square)": lambda: ops.lowpass(small),
        "scipy.fft dctn/idctn (batched)": lambda: scipy_dct_lowpass(xn, workers=1)}, len(small))
    add("224x224 float32, DCT square keep 0.3, batch 8, 1 thread", {
        "poisonkit lowpass(dct, square)": lambda: ops.lowpass(big),
        "scipy.fft dctn/idctn (batched)": lambda: scipy_dct_lowpass(big_np, workers=1)}, 8)
    torch.set_num_threads(THREADS)
    return rows


def main(quick: bool = False) -> None:
    load_before = os.getloadavg()[0]
    rows = run()
    load_after = os.getloadavg()[0]
    write_results("lowpass", rows, "Frequency low-pass (FF of RSK+FF), CPU",
                  notes="uint8 in/out unless float32; 2 threads (torch, scipy workers) unless "
                        "'1 thread'. kornia has no equivalent frequency low-pass. Both axes "
                        "of a 224x224 image are folded in half (DCT/Fourier rows are even or "
                        "odd), and the op's large outputs are advised for huge pages, as NumPy "
                        "does for scipy's (a 64-image float32 batch is 38 MB, above glibc's "
                        "mmap threshold: 4 KB page faults cost as much as the filter). Each "
                        "figure is the best of interleaved rounds: compare rows of the same "
                        f"run. Load average (1 min) {load_before:.1f} before, "
                        f"{load_after:.1f} after the run, on 2 cores shared with other jobs.")


if __name__ == "__main__":
    main()
