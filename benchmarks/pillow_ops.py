"""The Pillow baselines alone (numpy + PIL only), so that the same script runs under
Pillow and under pillow-simd in its own venv (benchmarks/pillow_simd.sh).
Run: python benchmarks/pillow_ops.py DATA.npz OUT.json LABEL"""
from __future__ import annotations

import io
import json
import sys
import time

import numpy as np
import PIL
import PIL.Image
import PIL.ImageFilter

SSK = [0, -0.375, 0, -0.375, 2.5, -0.375, 0, -0.375, 0]


def rate(fn, n, min_time=0.3, repeats=5):
    fn()
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            break
        calls *= 2
    best = elapsed
    for _ in range(repeats - 1):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, time.perf_counter() - start)
    return n * calls / best


def jpeg_roundtrip(img, quality):
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return PIL.Image.open(buf).convert("RGB")


def main(data: str, out: str, label: str) -> None:
    with np.load(data) as f:
        images = [PIL.Image.fromarray(x) for x in f["x_train"][:512]]
    kernel = PIL.ImageFilter.Kernel((3, 3), SSK, scale=1)
    rows = [
        {"case": "SSK uint8 32x32", "impl": f"{label} ImageFilter.Kernel (per image)",
         "images_per_s": round(rate(lambda: [im.filter(kernel) for im in images], len(images)))},
        {"case": "JPEG q=10 round trip 32x32", "impl": f"{label} save+open (per image)",
         "images_per_s": round(rate(lambda: [jpeg_roundtrip(im, 10) for im in images], len(images)))},
    ]
    for r in rows:
        print(f"{r['case']:28s} {r['impl']:40s} {r['images_per_s']:10,d} images/s")
    with open(out, "w") as f:
        json.dump({"pillow_version": PIL.__version__, "label": label, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main(*sys.argv[1:4])
