"""filter2d benchmark: SSK sharpening and the class-wise blur poison on 512 real CIFAR-10
images (uint8, 32x32) and 32 of them resized to 224x224, CPU, against torch, torchvision, kornia, OpenCV, Pillow and the
reference loop. Run: python -m poisonkit.bench.filter2d"""
from __future__ import annotations

import os

import cv2
import torch

from poisonkit import ops
from poisonkit.transforms import ClasswiseBlur, RandomSharpen

from . import filter2d_peers as peers
from .common import images_per_second, load_cifar_uint8, write_results
from .lowpass import resized

N = 512
N_224 = 32  # a loader-sized batch of 224x224 images


def main(quick: bool = False) -> None:
    torch.set_num_threads(2)
    cv2.setNumThreads(2)
    small = load_cifar_uint8(N)
    rows = []

    def add(case, impl, fn, n):
        rate = images_per_second(fn, n)
        rows.append({"case": case, "impl": impl, "images_per_s": round(rate), "batch": n})
        print(f"{case:28s} {impl:36s} {rate:12,.0f} images/s", flush=True)

    n_ref = 32 if quick else 128
    for size, n in ((32, N), (224, N_224)):
        x = small if size == 32 else resized(small[:n], size)
        y = torch.arange(n) % 10
        ssk = peers.SSK.expand(n, 3, 3).contiguous()
        case = f"SSK uint8 {size}x{size} (reflect)"
        add(case, "poisonkit filter2d", lambda: ops.filter2d(x, ssk, padding="reflect"), n)
        add(case, "torch conv2d (batched)", lambda: peers.sharpen_torch_conv2d(x), n)
        add(case, "kornia filter2d (batched)", lambda: peers.sharpen_kornia(x), n)
        add(case, "torchvision adjust_sharpness", lambda: peers.sharpen_torchvision(x), n)
        hwc = peers.opencv_inputs(x)
        add(case, "OpenCV filter2D (per image)", lambda: peers.sharpen_opencv(hwc), n)
        pil = peers.pil_inputs(x)
        add(case, "Pillow ImageFilter.Kernel (per image)", lambda: peers.sharpen_pillow(pil), n)

        xf = x.float() / 255
        case = f"RSK float32 {size}x{size} (valid)"
        rsk = RandomSharpen(seed=0)
        add(case, "poisonkit RandomSharpen", lambda: rsk(xf), n)
        add(case, "torch conv2d (batched, fixed kernel)",
            lambda: torch.nn.functional.conv2d(xf, peers.SSK.expand(3, 1, 3, 3),
                                               groups=3).clamp_(0, 1), n)

        case = f"class-wise blur uint8 {size}x{size}"
        blur = ClasswiseBlur(seed=0)
        add(case, "poisonkit ClasswiseBlur", lambda: blur(x, y), n)
        add(case, "torch grouped conv2d (batched)",
            lambda: peers.classwise_torch_batched(x, y, blur.kernels), n)
        k = min(n_ref, n // 4) if size > 32 else n_ref
        add(case, "reference loop (per image)",
            lambda: peers.classwise_reference_loop(x[:k], y[:k], blur.kernels), k)

    write_results("filter2d", rows, "filter2d: sharpening and class-wise blur, CPU",
                  notes=f"Batches of {N} real CIFAR-10 images at 32x32 and {N_224} of them "
                        f"resized bilinearly to 224x224 (the reference loop: {n_ref} and "
                        f"{min(n_ref, N_224 // 4)}), 2 threads. Speedup = poisonkit images/s "
                        "over the row's images/s. Load average (1 min) at the end: "
                        f"{os.getloadavg()[0]:.1f} on 2 cores shared with other jobs.")


if __name__ == "__main__":
    main()
