"""Runs every benchmark script, then rebuilds the leaderboard (`poisonkit bench`)."""
from __future__ import annotations

import importlib
import json
import time
from pathlib import Path

from . import leaderboard
from .common import DEFAULT_OUT, configure

# Each module has main(quick: bool) writing <name>.json and .md to the results folder;
# line_rate reads the others, so it runs last.
BENCHMARKS = ["filter2d", "ar", "lsp_ops", "lowpass", "projection", "em", "loader", "jpeg_loader",
              "dali_pipeline", "contention", "line_rate"]
# Run only when named (--only gpu): they need a CUDA device.
GPU_BENCHMARKS = ["gpu"]
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def full_results(out: Path) -> list[str]:
    """Names of the results in ``out`` from full (not --quick) runs; results written before
    runs were marked count as full."""
    names = []
    for path in sorted(out.glob("*.json")) if out.is_dir() else []:
        try:
            payload = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(payload, dict) and "rows" in payload and payload.get("quick") is not True:
            names.append(path.name)
    return names


def check_output(out: Path, quick: bool) -> None:
    """Refuses, before anything runs, a folder inside the package and a quick run that would
    overwrite full results."""
    resolved = out.resolve()
    if resolved == PACKAGE_DIR or PACKAGE_DIR in resolved.parents:
        raise ValueError(f"--out: {out} is inside the poisonkit package ({PACKAGE_DIR}); "
                         "choose a folder of your own")
    if quick and (full := full_results(out)):
        raise ValueError(f"--out: {out} holds full benchmark results ({', '.join(full)}) that "
                         "--quick would overwrite; choose another folder for quick runs")


def run(out: str | Path = DEFAULT_OUT, quick: bool = False,
        only: list[str] | None = None) -> Path:
    """Runs the benchmarks named in ``only`` (default all) and the leaderboard, writing to
    ``out``; returns it."""
    out = Path(out)
    names = BENCHMARKS if not only else only
    unknown = sorted(set(names) - set(BENCHMARKS) - set(GPU_BENCHMARKS))
    if unknown:
        raise ValueError(f"--only: unknown benchmarks {unknown}; expected some of {BENCHMARKS + GPU_BENCHMARKS}")
    check_output(out, quick)
    configure(out, quick)
    for name in names:
        start = time.perf_counter()
        print(f"== {name}", flush=True)
        importlib.import_module(f"{__package__}.{name}").main(quick=quick)
        print(f"== {name} took {time.perf_counter() - start:.0f} s", flush=True)
    leaderboard.main()
    print(f"results in {out}")
    return out
