"""Every op on one GPU at batch 4096 (32x32) and 512 (224x224): images/s and the share of
the HBM roofline it reaches, against torch / kornia / torchvision built-ins on the same
GPU (the DALI built-ins are in benchmarks.dali_pipeline --device-id 0).

Roofline: the op's minimal traffic (input read once, output written once) over the
device's peak DRAM bandwidth (2 x memory clock x bus width, as torch.cuda's device limits
compute it); the measured device-to-device copy bandwidth is reported beside it as the
practical ceiling. Needs a CUDA device. Run: poisonkit bench --only gpu"""
from __future__ import annotations

import sys

import torch

from . import op_suite
from .common import images_per_second, load_cifar, spread, write_results
from .lowpass import resized

BATCHES = {32: 4096, 224: 512}


def peak_bandwidth(device: torch.device) -> float:
    """Bytes/s of DRAM at its rated clock."""
    props = torch.cuda.get_device_properties(device)
    return 2 * props.memory_bus_width / 8 * props.memory_clock_rate * 1000


def copy_bandwidth(device: torch.device, nbytes: int = 1 << 30) -> float:
    """Bytes/s moved (read + write) by a device-to-device copy of nbytes."""
    src = torch.empty(nbytes, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    calls_per_s = images_per_second(lambda: dst.copy_(src), 1)
    return 2 * nbytes * calls_per_s


def main(quick: bool = False) -> None:
    if not torch.cuda.is_available():
        raise SystemExit("benchmarks.gpu: no CUDA device")
    device = torch.device("cuda")
    peak, copy = peak_bandwidth(device), copy_bandwidth(device)
    x, y = load_cifar(10_000)
    rows = []
    for size, n in BATCHES.items():
        images, labels = spread(x, y, n)
        images = (images if size == 32 else resized(images, size)).to(device)
        for case in op_suite.cases(images, labels.to(device)):
            rate = images_per_second(case.fn, case.images)
            achieved = case.bytes / case.images * rate
            rows.append({"case": case.case, "impl": case.impl, "images_per_s": rate,
                         "batch": case.images, "bytes_per_s": achieved,
                         "pct_peak_hbm": round(100 * achieved / peak, 2),
                         "pct_copy_bandwidth": round(100 * achieved / copy, 2)})
            print(f"{case.case:45s} {case.impl:36s} {rate:14,.0f} images/s "
                  f"{100 * achieved / peak:6.2f}% of peak HBM", flush=True)
    roofline = ["| case | implementation | % of peak HBM | % of copy bandwidth |",
                "|---|---|---:|---:|"]
    roofline += [f"| {r['case']} | {r['impl']} | {r['pct_peak_hbm']:.2f} | "
                 f"{r['pct_copy_bandwidth']:.2f} |" for r in rows]
    write_results("gpu", rows, f"Every op on {torch.cuda.get_device_name(device)}",
                  notes=f"Batches: {BATCHES[32]} at 32x32, {BATCHES[224]} at 224x224. Peak DRAM "
                        f"bandwidth {peak / 1e9:,.0f} GB/s (rated), device-to-device copy "
                        f"{copy / 1e9:,.0f} GB/s (measured). Roofline share: minimal traffic "
                        "(input read + output written once) x images/s over each bandwidth. The "
                        "JPEG rows code on the host (Pillow) by design (poisonkit.defenses.jpeg); "
                        "torchvision's row uses nvjpeg (4:4:4).\n\n" + "\n".join(roofline))


if __name__ == "__main__":
    main("--quick" in sys.argv)
