"""Every op with the peers a user would otherwise run, as timeable cases on one batch at
any image size and on any device: shared by the contention / 224x224 benchmark (CPU) and
the GPU benchmark, so both time the same code. Peers that only exist on the CPU (OpenCV,
scipy, the reference loop) are left out on CUDA; peers are written in plain
torch / kornia / scipy / OpenCV, independently of poisonkit's ops."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import kornia.filters
import numpy as np
import scipy.fft
import torch
import torch.nn.functional as F

from poisonkit import ops
from poisonkit.defenses.jpeg import jpeg_roundtrip
from poisonkit.defenses.sharpen import rsk_kernels, ssk_kernel
from poisonkit.poisons.ar import sample_coefficients
from poisonkit.poisons.classwise_blur import class_kernels
from poisonkit.poisons.lsp import LSPPoison
from poisonkit.poisons.one_pixel import OnePixelShortcut

from . import filter2d_peers as peers
from .lowpass import scipy_dct_lowpass, torch_fft_disk_mask, torch_fft_lowpass
from .projection import basis, torch_project_out

KEEP = 0.3
AR_KEY = 1


@dataclass
class Case:
    case: str          # the workload, e.g. "SSK uint8 224x224 (reflect)"
    impl: str          # "poisonkit ..." or the peer
    fn: Callable[[], object]
    images: int        # images per call
    bytes: int         # minimal memory traffic per call: input read + output written


def to_uint8(z: torch.Tensor) -> torch.Tensor:
    return (z * 255).round_().clamp_(0, 255).to(torch.uint8)


def dct_projector(n: int, keep: float, device) -> torch.Tensor:
    """P = C^T diag(m) C for the orthonormal DCT-II matrix C (from scipy) and the mask
    keeping the first int(n * keep) coefficients: the low-pass along one axis."""
    c = scipy.fft.dct(np.eye(n), norm="ortho", axis=0)
    m = (np.arange(n) < int(n * keep)).astype(np.float64)
    return torch.from_numpy(c.T @ np.diag(m) @ c).float().to(device)


def torch_dct_lowpass(x: torch.Tensor, p_rows: torch.Tensor, p_cols: torch.Tensor) -> torch.Tensor:
    return to_uint8((p_rows @ (x.float() / 255) @ p_cols.T).clamp_(0, 1))


def torch_conv_sharpen(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    z = F.conv2d(F.pad(x.float() / 255, (1, 1, 1, 1), mode="reflect"),
                 kernel.expand(x.shape[1], 1, 3, 3), groups=x.shape[1])
    return to_uint8(z)


def torch_rsk(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """One grouped conv with a kernel per (image, channel), 'valid', clamped."""
    n, c, h, w = x.shape
    weights = kernels.repeat_interleave(c, dim=0).unsqueeze(1)
    z = F.conv2d(x.reshape(1, n * c, h, w), weights, groups=n * c)
    return z.reshape(n, c, h - 2, w - 2).clamp_(0, 1)


def torchvision_jpeg(x: torch.Tensor, quality: int = 10) -> torch.Tensor:
    """torchvision.io's codec (libjpeg on CPU, nvjpeg 4:4:4 on CUDA; deprecated in 0.29)."""
    import warnings

    from torchvision.io import decode_jpeg, encode_jpeg
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        encoded = [e.cpu() for e in encode_jpeg(list(x), quality=quality)]
        return torch.stack(decode_jpeg(encoded, device=x.device))


def cases(x: torch.Tensor, labels: torch.Tensor, reference_images: int = 0) -> list[Case]:
    """The cases for uint8 NCHW images x (3 channels, any size, on any device) and labels
    covering all 10 classes (the OPS search needs every class: pick with common.spread).
    reference_images > 0 adds the reference's per-image class-wise blur loop on that many
    images (32x32 only; the AR reference loop, seconds per image, is in benchmarks.ar)."""
    dev, (n, c, h, w) = x.device, x.shape
    size = f"{h}x{w}"
    cpu = dev.type == "cpu"
    u8, f32 = x.numel(), 4 * x.numel()
    xf = (x.float() / 255).contiguous()
    out = []

    def add(case, impl, fn, nbytes, images=n):
        out.append(Case(case, impl, fn, images, nbytes))

    ssk = ssk_kernel().to(dev)
    ssk_per_image = ssk.expand(n, 3, 3).contiguous()
    case = f"SSK sharpen uint8 {size} (reflect)"
    add(case, "poisonkit filter2d", lambda: ops.filter2d(x, ssk_per_image, padding="reflect"), 2 * u8)
    add(case, "torch conv2d (batched)", lambda: torch_conv_sharpen(x, ssk), 2 * u8)
    add(case, "kornia filter2d (batched)", lambda: to_uint8(kornia.filters.filter2d(
        x.float() / 255, ssk[None], border_type="reflect")), 2 * u8)
    if cpu:
        hwc = peers.opencv_inputs(x)
        add(case, "OpenCV filter2D (per image)", lambda: peers.sharpen_opencv(hwc), 2 * u8)

    rsk = rsk_kernels(n, generator=torch.Generator().manual_seed(0)).to(dev)
    case = f"RSK sharpen float32 {size} (valid)"
    add(case, "poisonkit filter2d", lambda: ops.filter2d(xf, rsk, padding="valid"), 2 * f32)
    add(case, "torch grouped conv2d (batched)", lambda: torch_rsk(xf, rsk), 2 * f32)

    blur = class_kernels().to(dev)
    per_image = blur[labels]
    case = f"class-wise blur uint8 {size}"
    add(case, "poisonkit filter2d", lambda: ops.filter2d(x, per_image, padding="zeros",
                                                         normalize="max", rounding="truncate"), 2 * u8)
    add(case, "torch grouped conv2d (batched)",
        lambda: peers.classwise_torch_batched(x, labels, blur), 2 * u8)
    if reference_images and h == 32:
        r = reference_images
        add(case, "reference loop (per image)",
            lambda: peers.classwise_reference_loop(x[:r], labels[:r], blur), 2 * u8 * r // n, r)

    case = f"DCT low-pass uint8 {size} (square, keep {KEEP})"
    add(case, "poisonkit lowpass", lambda: ops.lowpass(x, KEEP), 2 * u8)
    p_rows, p_cols = dct_projector(h, KEEP, dev), dct_projector(w, KEEP, dev)
    add(case, "torch matmul (C^T m C, both axes)", lambda: torch_dct_lowpass(x, p_rows, p_cols), 2 * u8)
    if cpu:
        xn = x.numpy()
        add(case, "scipy.fft dctn/idctn (batched)", lambda: scipy_dct_lowpass(xn, KEEP), 2 * u8)
    mask = torch_fft_disk_mask(h, w, KEEP).to(dev)
    case = f"FFT low-pass uint8 {size} (disk, keep {KEEP})"
    add(case, "poisonkit lowpass", lambda: ops.lowpass(x, KEEP, basis="fft", shape="disk"), 2 * u8)
    add(case, "torch.fft rfft2/irfft2", lambda: torch_fft_lowpass(x, mask), 2 * u8)

    q = basis(c * h * w, 10).to(dev)
    case = f"projection uint8 -> float32 {size} (K=10)"
    add(case, "poisonkit project_out", lambda: ops.project_out(x, q), u8 + f32)
    add(case, "torch (convert, matmul, matmul)", lambda: torch_project_out(x, q), u8 + f32)

    coeffs = sample_coefficients(10, seed=0, progress=False).coeffs.to(dev)
    indices = torch.arange(n, device=dev)
    crop = 2 if h >= 224 else 4
    case = f"AR poison uint8 {size} (crop {crop})"
    add(case, "poisonkit ar_poison", lambda: ops.ar_poison(x, coeffs, labels, indices, AR_KEY, crop),
        2 * u8)

    lsp = LSPPoison(10, key=AR_KEY)
    stored = lsp.perturbation(labels, indices, c, h, w)  # what a stored-array peer keeps
    case = f"LSP poison uint8 {size} (patch {lsp.patch})"
    add(case, "poisonkit LSPPoison", lambda: lsp.poison_batch(x, labels, indices), 2 * u8)
    # the peer looks its batch's rows up in the stored array, as a loader must
    add(case, "torch indexing/add on a stored perturbation array",
        lambda: (x.float() / 255 + stored[indices]).clamp_(0, 1).mul_(255).to(torch.uint8), 2 * u8)

    one_pixel = OnePixelShortcut.search(x, labels, 10)
    pixel_rows, pixel_cols = one_pixel.rows.to(dev), one_pixel.cols.to(dev)
    colour = (one_pixel.colours * 255).to(device=dev, dtype=torch.uint8)

    def one_pixel_peer():
        out = x.clone()
        out[indices, :, pixel_rows[labels], pixel_cols[labels]] = colour[labels]
        return out

    case = f"OPS poison uint8 {size}"
    add(case, "poisonkit OnePixelShortcut", lambda: one_pixel.poison_batch(x, labels), 2 * u8)
    add(case, "torch clone + index_put", one_pixel_peer, 2 * u8)

    case = f"JPEG quality 10 uint8 {size}"
    add(case, "poisonkit jpeg_roundtrip (Pillow)", lambda: jpeg_roundtrip(x, 10), 2 * u8)
    add(case, "torchvision.io encode/decode_jpeg", lambda: torchvision_jpeg(x), 2 * u8)
    return out

