# The two commands: `make demo` (set up, build, run the main job) and `make test`.
# Each creates .venv if missing, installs the pinned requirements, builds poisonkit._C
# in place (C++ always, CUDA sources when nvcc and a CUDA torch are present), then runs.
# `make test` and `make bench` also build the DALI plugin (build/dali/libpoisonkit_dali.so).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEPS := $(VENV)/.deps-installed
# torch guesses /usr/local when CUDA_HOME is unset; the conventional toolkit lives here.
ifneq ($(wildcard /usr/local/cuda/bin/nvcc),)
export CUDA_HOME ?= /usr/local/cuda
endif
export MAX_JOBS ?= 2
# The team's CIFAR-10 subset when present; without it the demo uses CIFAR-10 through
# torchvision (online) or procedural images (offline).
ifneq ($(wildcard ../shared/data/cifar10-10k.npz),)
export POISONKIT_DATA ?= $(abspath ../shared/data/cifar10-10k.npz)
endif

.PHONY: build dali test sanitize demo bench clean

$(DEPS): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	touch $@

build: $(DEPS)
	$(PY) setup.py -q build_ext --inplace

# The DALI plugin (libpoisonkit_dali.so), built by CMake against the pinned DALI wheel.
dali: $(DEPS)
	cmake -S . -B build/dali -DPython_EXECUTABLE=$(abspath $(PY))
	cmake --build build/dali -j $(MAX_JOBS)

test: build dali
	$(PY) -m pytest -q tests

# The CPU kernels built with ASan + UBSan into build/sanitize (a copy of the package, so
# the in-place poisonkit._C stays as it is), running the op and hardening tests; any report
# fails the run (UBSan halts on the first, ASan always does).
SANITIZE_DIR := build/sanitize
# opcheck / torch.compile tests end the ASan process silently (rc 1, no report): left out.
SANITIZE_TESTS := tests/ops tests/hardening --deselect tests/hardening/test_export_kill.py \
	-k "not opcheck and not compile"
sanitize: $(DEPS)
	rm -rf $(SANITIZE_DIR)/poisonkit && mkdir -p $(SANITIZE_DIR)
	cp -r poisonkit $(SANITIZE_DIR)/ && rm -f $(SANITIZE_DIR)/poisonkit/_C*.so
	POISONKIT_CUDA=0 POISONKIT_SANITIZE=1 $(PY) setup.py -q build_ext \
		--build-lib $(SANITIZE_DIR) --build-temp $(SANITIZE_DIR)/temp
	LD_PRELOAD=$$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0 \
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		$(PY) -m pytest -q -p no:cacheprovider -o pythonpath="$(SANITIZE_DIR) ." \
		$(SANITIZE_TESTS)

demo: build
	$(PY) -m poisonkit demo --out out/demo

bench: build dali
	$(PY) -m pytest -q benchmarks --benchmark-only --benchmark-json=benchmarks/results/pytest-benchmark.json
	$(PY) -m poisonkit bench

clean:
	rm -rf build poisonkit/_C*.so
