"""Runs every benchmark script, then rebuilds the leaderboard (`poisonkit bench`)."""
from __future__ import annotations

import importlib
import time

from . import leaderboard
from .common import set_quick

# Each module has main(quick: bool) writing results/<name>.json and .md; line_rate
# reads the others, so it runs last.
BENCHMARKS = ["filter2d", "ar", "lowpass", "projection", "em", "loader", "dali_pipeline", "line_rate"]


def run(quick: bool = False, only: list[str] | None = None) -> None:
    set_quick(quick)
    names = BENCHMARKS if not only else only
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        raise ValueError(f"bench: unknown benchmarks {unknown}; expected some of {BENCHMARKS}")
    for name in names:
        start = time.perf_counter()
        print(f"== {name}", flush=True)
        importlib.import_module(f"benchmarks.{name}").main(quick=quick)
        print(f"== {name} took {time.perf_counter() - start:.0f} s", flush=True)
    leaderboard.main()
