#!/usr/bin/env bash
# First contact with a GPU, as one command (device time is minutes):
#   bash benchmarks/gpu_check.sh
# 1. checks that everything it would run exists (scripts, test files, modules import, the
#    CUDA tests collect, the data is there) -- on any machine (with a GPU, the imports are
#    checked after the build below, which they need);
# 2. without a GPU: says so and exits 0;
# 3. with one: builds poisonkit._C with CUDA (POISONKIT_CUDA=1) and the DALI plugin, runs
#    every requires_cuda test (CPU vs CUDA parity, all dtypes; a missing data file or
#    plugin fails them, never skips), the GPU benchmarks (images/s and % of HBM roofline
#    at batch 4096 against torch/kornia/torchvision on the same GPU), the DALI pipeline on
#    the GPU (with DALI's built-ins), EM crafting vs the reference loop on the GPU, and one
#    small eval (bf16 autocast, channels_last).
# Each step has its own timeout; the steps' sum stays under 8 minutes. Everything goes to
# benchmarks/results/gpu/ (logs, junit XML, results JSON + md, the eval report), or to
# $GPU_CHECK_OUT. Needs the pinned environment (requirements.txt): PY=/path/to/python,
# default .venv/bin/python. Exit status: the number of failed steps (0 = all passed).
set -u
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
OUT=${GPU_CHECK_OUT:-benchmarks/results/gpu}
export POISONKIT_DATA=${POISONKIT_DATA:-$(realpath -m ../shared/data/cifar10-10k.npz)}
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH}

# ---- 1. preflight: what the GPU run needs, checked everywhere ----
missing=0
need() { if ! "$@" >/dev/null 2>&1; then echo "gpu_check: MISSING: $*"; missing=$((missing + 1)); fi; }
for f in setup.py CMakeLists.txt poisonkit/bench/gpu.py poisonkit/bench/op_suite.py \
         poisonkit/bench/dali_pipeline.py tests/defenses/test_jpeg.py tests/ops/test_filter2d.py \
         tests/ops/test_lowpass.py tests/ops/test_projection.py tests/ops/test_ar.py tests/test_dali.py; do
  need test -f "$f"
done
need test -f "$POISONKIT_DATA"
need test -x "$CUDA_HOME/bin/nvcc"
need command -v cmake
need "$PY" -c "import torch, kornia, nvidia.dali"
gpu=0
"$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null && gpu=1

failed=0
step() {  # step NAME SECONDS CMD...: runs CMD with a timeout, logs to $OUT/NAME.log
  local name=$1 limit=$2; shift 2
  local start=$SECONDS
  echo "== $name (limit ${limit}s)"
  timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  tail -n 15 "$OUT/$name.log"
  echo "== $name: rc=$rc, $((SECONDS - start)) s"
  [ "$rc" -eq 0 ] || failed=$((failed + 1))
  return "$rc"
}

# ---- 2. with a GPU: build first (the extension the imports below need) ----
if [ "$gpu" -eq 1 ] && [ "$missing" -eq 0 ]; then
  mkdir -p "$OUT"
  nproc_=$(nproc)
  arch=$("$PY" -c "import torch; print('%d.%d' % torch.cuda.get_device_capability())")
  "$PY" -c "import torch; print(torch.cuda.get_device_name(), torch.__version__)" | tee "$OUT/device.txt"
  nvidia-smi >> "$OUT/device.txt" 2>&1
  # The torch extension and the DALI plugin build side by side, for this GPU only.
  # POISONKIT_DALI=0: setup.py's build_ext would also build the plugin, in the same build/dali.
  (export TORCH_CUDA_ARCH_LIST=$arch MAX_JOBS=$((nproc_ / 2)) POISONKIT_CUDA=1 POISONKIT_DALI=0
   step build 200 "$PY" setup.py -q build_ext --inplace) &
  build_pid=$!
  (step dali_build 200 bash -c "cmake -S . -B build/dali -DPython_EXECUTABLE=$(realpath "$(command -v "$PY")") \
     -DCMAKE_CUDA_ARCHITECTURES=${arch/./} && cmake --build build/dali -j $((nproc_ / 2))") &
  dali_pid=$!
  wait "$build_pid" || failed=$((failed + 1))
  wait "$dali_pid" || failed=$((failed + 1))
  if [ "$failed" -gt 0 ]; then echo "gpu_check: build failed; see $OUT/*.log"; exit "$failed"; fi
fi

# ---- 3. everywhere: the modules import, the CUDA tests exist and collect ----
need "$PY" -c "import poisonkit.bench.gpu, poisonkit.bench.op_suite, poisonkit.bench.dali_pipeline, poisonkit.bench.em, \
poisonkit.ops, poisonkit.dali, poisonkit.defenses.jpeg, poisonkit.eval.run"
CUDA_TESTS="tests/ops tests/defenses tests/test_dali.py"
collected=$("$PY" -m pytest -q --collect-only -m requires_cuda $CUDA_TESTS 2>/dev/null | grep -c "::")
if [ "${collected:-0}" -lt 10 ]; then
  echo "gpu_check: MISSING: requires_cuda tests (collected ${collected:-0})"; missing=$((missing + 1))
fi
if [ "$missing" -gt 0 ]; then
  echo "gpu_check: $missing preflight check(s) failed; nothing run"; exit 1
fi
echo "gpu_check: preflight ok ($collected CUDA tests collected, scripts and modules present)"
if [ "$gpu" -eq 0 ]; then
  echo "gpu_check: no GPU present (torch.cuda.is_available() is False): nothing run, exit 0"
  exit 0
fi

# ---- 4. on the GPU ----
step cuda_built 30 "$PY" -c "from poisonkit import ops; assert ops.cuda_available(), 'no CUDA kernels in poisonkit._C'"

step cuda_tests 120 "$PY" -m pytest -q -m requires_cuda tests -rs --junitxml="$OUT/cuda_tests.xml"
step dali_gpu 45 "$PY" -c "from poisonkit.bench import common, dali_pipeline; common.configure('$OUT'); \
dali_pipeline.main(['--device-id', '0', '--batch', '1024', '--threads', '4'])"
# after the DALI step: its leaderboard then covers both
step bench_gpu 100 "$PY" -m poisonkit bench --only gpu --out "$OUT"
step em_gpu 60 "$PY" -c "from poisonkit.bench import common, em; common.configure('$OUT'); em.main(device='cuda')"
step eval_gpu 90 "$PY" -m poisonkit eval --data "$POISONKIT_DATA" --device cuda --model resnet18 \
  --epochs 3 --batch-size 512 --poison blur --defense none --defense rsk+ff --out "$OUT/eval"

echo "gpu_check: $failed step(s) failed; results and logs in $OUT/"
exit "$failed"
