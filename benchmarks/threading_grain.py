"""Measures the grain of csrc/torch/parallel.h (kMinWorkPerThread): how much work a thread
must get before a parallel region pays for itself on this machine.

Two numbers, taken in the same run: (1) the cost of entering and leaving a 2-thread ATen
parallel region (torch's own x.add_(1) on 2 x 32768 floats, 2 threads minus 1 thread's
half, median and 90th percentile over many calls: a busy machine shows in the tail), and
(2) the time per work unit of each op on one thread at a batch far above the grain (work
units as parallel.h counts them). The grain is the work that takes 10x the region's p90
cost, so that a region costs at most ~10% even when the machine is busy.

    python -m benchmarks.threading_grain      (prints; writes results/threading_grain.json)
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch

from poisonkit import ops
from poisonkit._io import write_json
from poisonkit.defenses.sharpen import ssk_kernel
from poisonkit.poisons.ar import sample_coefficients

RESULTS = Path(__file__).resolve().parent / "results"


def timings(fn, calls: int) -> list[float]:
    fn()
    out = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def region_cost(calls: int = 3000) -> dict:
    x = torch.zeros(2 * 32768)
    torch.set_num_threads(1)
    one = timings(lambda: x.add_(1), calls)
    torch.set_num_threads(2)
    two = timings(lambda: x.add_(1), calls)
    half = statistics.median(one) / 2
    return {"median_us": (statistics.median(two) - half) * 1e6,
            "p90_us": (statistics.quantiles(two, n=10)[-1] - half) * 1e6}


def op_cases():
    """(name, call on n images, work units per image as parallel.h counts them)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (512, 3, 32, 32), dtype=torch.uint8, generator=gen)
    w = ssk_kernel().expand(512, 3, 3).contiguous()
    q = torch.linalg.qr(torch.randn(3072, 10, generator=gen))[0]
    coeffs = sample_coefficients(10, seed=0, progress=False).coeffs
    labels, idx = torch.arange(512) % 10, torch.arange(512)
    pixels = 3 * 32 * 32
    return [("filter2d_ssk", lambda n: ops.filter2d(x[:n], w[:n], "zeros"), pixels * (2 + 9 // 4)),
            ("lowpass_dct", lambda n: ops.lowpass(x[:n], 0.3), pixels * (2 + 9)),
            ("project_out", lambda n: ops.project_out(x[:n], q), pixels * (3 + 10 // 4)),
            ("ar_poison", lambda n: ops.ar_poison(x[:n], coeffs, labels[:n], idx[:n], 1),
             16 * 3 * 36 * 36)]


def main() -> None:
    torch.set_num_threads(1)
    per_unit = {}
    for name, call, work in op_cases():
        t = statistics.median(timings(lambda: call(512), 30))
        per_unit[name] = t / (512 * work) * 1e9  # ns per work unit
    region = region_cost()
    torch.set_num_threads(2)
    ns = statistics.median(per_unit.values())
    grain = 10 * region["median_us"] * 1e3 / ns
    result = {"region": region, "ns_per_work_unit": per_unit,
              "grain_work_units": grain, "threads": 2}
    for k, v in result.items():
        print(k, v)
    write_json(RESULTS / "threading_grain.json", result)


if __name__ == "__main__":
    main()
