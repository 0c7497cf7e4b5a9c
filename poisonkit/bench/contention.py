"""Every op quiet and under contention, at 32x32 and 224x224, CPU, against its peers.

A data loader is never alone on its machine. "Under contention" runs each measurement
while one competing process keeps a core busy (a Python spin loop); "quiet" pauses it
(SIGSTOP). Both conditions and all implementations are interleaved round by round in
the same run, each figure the best of its rounds, so that the drift of a shared machine
hits every row alike: compare rows of the same run. 224x224 images are real CIFAR-10
images resized bilinearly. Run: poisonkit bench --only contention"""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import cv2
import torch

from . import op_suite
from .common import images_per_second, load_cifar, spread, write_results
from .lowpass import resized

THREADS = 2
CONDITIONS = ("quiet", "1 busy process")


class Competitor:
    """A busy process, paused (quiet) or running (contended)."""

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        self.set("quiet")
        return self

    def set(self, condition: str) -> None:
        self.proc.send_signal(signal.SIGSTOP if condition == "quiet" else signal.SIGCONT)

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


def run(batches: dict[int, int], rounds: int) -> list[dict]:
    torch.set_num_threads(THREADS)
    cv2.setNumThreads(THREADS)
    x, y = load_cifar(10_000)
    suite = []
    for size, n in batches.items():
        images, labels = spread(x, y, n)
        images = images if size == 32 else resized(images, size)
        suite += op_suite.cases(images, labels, reference_images=32 if size == 32 else 0)
    best: dict[tuple, float] = {}
    with Competitor() as competitor:
        for r in range(rounds):
            for case in suite:
                for condition in CONDITIONS:
                    competitor.set(condition)
                    rate = images_per_second(case.fn, case.images)
                    key = (case.case, case.impl, condition)
                    best[key] = max(best.get(key, 0.0), rate)
                    print(f"round {r + 1} {condition:15s} {case.case:45s} {case.impl:36s} "
                          f"{rate:12,.0f}", flush=True)
    return [{"case": f"{case}, {condition}", "impl": impl, "images_per_s": rate,
             "condition": condition} for (case, impl, condition), rate in best.items()]


def main(quick: bool = False) -> None:
    batches = {32: 512, 224: 16 if quick else 32}
    load_before = os.getloadavg()[0]
    rows = run(batches, rounds=2 if quick else 3)
    load = f"{load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    write_results("contention", rows, "Every op quiet and under contention, 32x32 and 224x224, CPU",
                  notes=f"{THREADS} threads (torch, OpenCV, scipy workers); batches "
                        f"{batches[32]} (32x32) and {batches[224]} (224x224, CIFAR-10 images "
                        "resized bilinearly). '1 busy process': a competing process spins on one "
                        "core during the measurement; 'quiet': it is paused. Conditions and "
                        "implementations interleaved in the same run, best of the rounds. The "
                        f"machine was also shared with other jobs (1-min load average {load}, "
                        f"on {os.cpu_count()} cores), so absolute figures are noisy: compare rows "
                        "of this run. Speedup = poisonkit images/s over the row's, "
                        "within the same case and condition.")


if __name__ == "__main__":
    main("--quick" in sys.argv)
