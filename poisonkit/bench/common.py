"""Helpers shared by the benchmark scripts: timing in images/s, machine facts, and writing
results as JSON plus a markdown table to the results folder (``poisonkit bench --out``)."""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Callable

import torch

from poisonkit._io import write_json, write_text

# Where results go: relative to the working directory, never inside the package; the
# checkout's committed benchmarks/results/ only when named (`make bench`).
DEFAULT_OUT = Path("poisonkit-bench-results")
OUTPUT = {"dir": DEFAULT_OUT}
# Timing effort: `poisonkit bench --quick` lowers it for a run of a few minutes in all.
TIMING = {"min_time": 0.3, "repeats": 5, "quick": False}


def configure(out: str | Path = DEFAULT_OUT, quick: bool = False) -> None:
    OUTPUT["dir"] = Path(out)
    TIMING.update({"min_time": 0.05, "repeats": 3} if quick else {"min_time": 0.3, "repeats": 5},
                  quick=quick)


def results_dir() -> Path:
    return OUTPUT["dir"]


def images_per_second(fn: Callable[[], object], n_images: int, min_time: float | None = None,
                      repeats: int | None = None) -> float:
    """Best-of-`repeats` throughput; each repeat runs fn enough times to last min_time."""
    min_time = TIMING["min_time"] if min_time is None else min_time
    repeats = TIMING["repeats"] if repeats is None else repeats
    fn()  # warm-up (allocations, caches, lazy init)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    calls = 1
    while True:  # calibrate the number of calls per repeat
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time or calls >= 1 << 20:
            break
        calls *= 2
    best = elapsed
    for _ in range(repeats - 1):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return n_images * calls / best


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "date": time.strftime("%Y-%m-%d"),
    }


def load_cifar(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n real CIFAR-10 training images (uint8 NCHW) and their labels (int64), from
    $POISONKIT_DATA (or, in a source checkout, ../shared/data)."""
    from poisonkit.data import load_npz
    default = Path(__file__).resolve().parents[3] / "shared" / "data" / "cifar10-10k.npz"
    path = Path(os.environ.get("POISONKIT_DATA", str(default)))
    if not path.is_file():
        raise FileNotFoundError(f"benchmarks need real CIFAR-10 images: {path} not found; set "
                                "POISONKIT_DATA to an .npz with x_train (uint8 NCHW) and y_train")
    data = load_npz(path)
    return data["x_train"][:n].contiguous(), data["y_train"][:n].contiguous()


def spread(x: torch.Tensor, y: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n images picked evenly over (x, y), contiguous: the stored set is sorted by class, so
    its first n images may all be of one class, and the class-wise ops would then run their
    best case (one kernel, one LSP mixing matrix) and the OPS search would refuse them."""
    pick = torch.linspace(0, len(x) - 1, n).long()
    return x[pick].contiguous(), y[pick].contiguous()


def load_cifar_uint8(n: int) -> torch.Tensor:
    """n real CIFAR-10 images, uint8 NCHW, from $POISONKIT_DATA (or ../shared/data)."""
    return load_cifar(n)[0]


def format_rate(rate: float) -> str:
    """Images/s for a table: thousands separators, two significant digits below 10 (the
    slow reference loops)."""
    return f"{rate:,.0f}" if rate >= 10 else f"{rate:.2g}"


def write_results(name: str, rows: list[dict], title: str, notes: str = "") -> Path:
    """rows: dicts with at least case, impl, images_per_s; a ratio column is added per
    case: poisonkit's throughput over each row's (so > 1 means poisonkit is faster)."""
    out = results_dir()
    out.mkdir(parents=True, exist_ok=True)
    ours = {r["case"]: r["images_per_s"] for r in rows if r["impl"].startswith("poisonkit")}
    for r in rows:
        base = ours.get(r["case"])
        r["poisonkit_speedup"] = round(base / r["images_per_s"], 3) if base else None
    payload = {"benchmark": name, "machine": machine(), "quick": TIMING["quick"], "rows": rows,
               "notes": notes}
    json_path = out / f"{name}.json"
    write_json(json_path, payload)
    lines = [f"# {title}", "", f"Machine: {payload['machine']['cpu']}, "
             f"{payload['machine']['torch_threads']} torch threads, "
             f"GPU: {payload['machine']['gpu']}, {payload['machine']['date']}.", "",
             "| case | implementation | images/s | poisonkit speedup |", "|---|---|---:|---:|"]
    for r in rows:
        speedup = "" if r["poisonkit_speedup"] is None else f"{r['poisonkit_speedup']:.2f}x"
        rate = r["images_per_s"]
        rate_text = format_rate(rate)
        lines.append(f"| {r['case']} | {r['impl']} | {rate_text} | {speedup} |")
    if notes:
        lines += ["", notes]
    md_path = out / f"{name}.md"
    write_text(md_path, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return json_path


def throughput_results(exclude: set[str] = frozenset()) -> list[dict]:
    """The payloads of the results folder's *.json written by write_results (rows of case,
    impl and images/s), skipping other results (experiments, pillow_simd) and names in
    exclude."""
    payloads = []
    for path in sorted(results_dir().glob("*.json")):
        if path.stem in exclude:
            continue
        payload = json.loads(path.read_text())
        rows = payload.get("rows") if isinstance(payload, dict) else None
        if rows and all({"case", "impl", "images_per_s"} <= r.keys() for r in rows):
            payloads.append(payload)
    return payloads


def interleaved_images_per_second(fns: dict[str, Callable[[], object]], n_images: int,
                                  rounds: int | None = None,
                                  min_time: float | None = None) -> dict[str, float]:
    """Best-of-rounds throughput of several implementations timed in turn, round after
    round, so that a load change on a shared machine hits them all alike."""
    min_time = TIMING["min_time"] if min_time is None else min_time
    rounds = TIMING["repeats"] if rounds is None else rounds
    calls = {}
    for name, fn in fns.items():  # warm-up and calibration
        fn()
        calls[name], start = 1, time.perf_counter()
        fn()
        once = max(time.perf_counter() - start, 1e-7)
        calls[name] = max(1, int(min_time / once))
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(calls[name]):
                fn()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            best[name] = min(best[name], (time.perf_counter() - start) / calls[name])
    return {name: n_images / t for name, t in best.items()}
