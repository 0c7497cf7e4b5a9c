#!/usr/bin/env bash
# Optional: builds pillow-simd in its own venv (it replaces Pillow, which torchvision
# needs, so it never enters .venv) and runs the Pillow baselines under both Pillow and
# pillow-simd. Writes benchmarks/results/pillow_simd.{json,md}, including a failed build.
# pillow-simd is pinned here rather than in requirements.txt: it never shares a venv with it.
set -uo pipefail
cd "$(dirname "$0")/.."
DATA=${POISONKIT_DATA:-../shared/data/cifar10-10k.npz}
VENV=build/pillow-simd-venv
RESULTS=benchmarks/results
mkdir -p "$RESULTS" build
log=build/pillow-simd-build.log
status=built
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV" && "$VENV/bin/pip" install -q "numpy==2.4.6" \
    && CC="cc -mavx2" "$VENV/bin/pip" install -q --no-binary :all: "pillow-simd==12.1.1.post0" > "$log" 2>&1 \
    || status="failed (see $log)"
fi
.venv/bin/python benchmarks/pillow_ops.py "$DATA" build/pillow.json Pillow
if [ "$status" = built ]; then
  "$VENV/bin/python" benchmarks/pillow_ops.py "$DATA" build/pillow-simd.json pillow-simd
fi
.venv/bin/python - "$status" <<'PY'
import json, sys, pathlib
status = sys.argv[1]
runs = [json.loads(pathlib.Path(p).read_text()) for p in ("build/pillow.json", "build/pillow-simd.json")
        if pathlib.Path(p).exists() and (status == "built" or "simd" not in p)]
out = {"benchmark": "pillow_simd", "pillow_simd_build": status, "runs": runs}
pathlib.Path("benchmarks/results/pillow_simd.json").write_text(json.dumps(out, indent=2))
lines = ["# Pillow vs pillow-simd (per-image loops, 512 CIFAR-10 images, 1 thread)", "",
         f"pillow-simd build: {status}.", "", "| case | implementation | version | images/s |",
         "|---|---|---|---:|"]
for run in runs:
    for r in run["rows"]:
        lines.append(f"| {r['case']} | {r['impl']} | {run['pillow_version']} | {r['images_per_s']:,} |")
pathlib.Path("benchmarks/results/pillow_simd.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
