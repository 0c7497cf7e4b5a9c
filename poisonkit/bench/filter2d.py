"""filter2d benchmark: SSK sharpening and the class-wise blur poison on 512 real CIFAR-10
images (uint8, 32x32), CPU, against torch, torchvision, kornia, OpenCV, Pillow and the
reference loop. Run: python -m poisonkit.bench.filter2d"""
from __future__ import annotations

import cv2
import torch

from poisonkit import ops
from poisonkit.transforms import ClasswiseBlur, RandomSharpen

from . import filter2d_peers as peers
from .common import images_per_second, load_cifar_uint8, write_results

N = 512


def main(quick: bool = False) -> None:
    torch.set_num_threads(2)
    cv2.setNumThreads(2)
    x = load_cifar_uint8(N)
    y = torch.arange(N) % 10
    rows = []

    def add(case, impl, fn, n=N):
        rate = images_per_second(fn, n)
        rows.append({"case": case, "impl": impl, "images_per_s": round(rate), "batch": n})
        print(f"{case:28s} {impl:36s} {rate:12,.0f} images/s", flush=True)

    ssk = peers.SSK.expand(N, 3, 3).contiguous()
    case = "SSK uint8 32x32 (reflect)"
    add(case, "poisonkit filter2d", lambda: ops.filter2d(x, ssk, padding="reflect"))
    add(case, "torch conv2d (batched)", lambda: peers.sharpen_torch_conv2d(x))
    add(case, "kornia filter2d (batched)", lambda: peers.sharpen_kornia(x))
    add(case, "torchvision adjust_sharpness", lambda: peers.sharpen_torchvision(x))
    hwc = peers.opencv_inputs(x)
    add(case, "OpenCV filter2D (per image)", lambda: peers.sharpen_opencv(hwc))
    pil = peers.pil_inputs(x)
    add(case, "Pillow ImageFilter.Kernel (per image)", lambda: peers.sharpen_pillow(pil))

    xf = x.float() / 255
    case = "RSK float32 32x32 (valid)"
    rsk = RandomSharpen(seed=0)
    add(case, "poisonkit RandomSharpen", lambda: rsk(xf))
    add(case, "torch conv2d (batched, fixed kernel)",
        lambda: torch.nn.functional.conv2d(xf, peers.SSK.expand(3, 1, 3, 3), groups=3).clamp_(0, 1))

    case = "class-wise blur uint8 32x32"
    blur = ClasswiseBlur(seed=0)
    add(case, "poisonkit ClasswiseBlur", lambda: blur(x, y))
    add(case, "torch grouped conv2d (batched)",
        lambda: peers.classwise_torch_batched(x, y, blur.kernels))
    n_ref = 32 if quick else 128
    add(case, "reference loop (per image)",
        lambda: peers.classwise_reference_loop(x[:n_ref], y[:n_ref], blur.kernels), n_ref)

    write_results("filter2d", rows, "filter2d: sharpening and class-wise blur, CPU",
                  notes=f"Batch of {N} real CIFAR-10 images (the reference loop: {n_ref}). "
                        "Speedup = poisonkit images/s over the row's images/s.")


if __name__ == "__main__":
    main()
