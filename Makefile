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
SANITIZE_TESTS := tests/ops tests/hardening --deselect tests/hardening/test_export_kill.py
sanitize: $(DEPS)
	rm -rf $(SANITIZE_DIR)/poisonkit && mkdir -p $(SANITIZE_DIR)
	cp -r poisonkit $(SANITIZE_DIR)/ && rm -f $(SANITIZE_DIR)/poisonkit/_C*.so
	POISONKIT_CUDA=0 POISONKIT_SANITIZE=1 $(PY) setup.py -q build_ext \
		--build-lib $(SANITIZE_DIR) --build-temp $(SANITIZE_DIR)/temp
	# libstdc++ preloaded beside libasan: python does not link it, and ASan's __cxa_throw
	# interceptor must find the real one when the first TORCH_CHECK throws.
	# allocator_may_return_null: tests that ask for absurd sizes expect torch's OOM error.
	# --import-mode=importlib: pytest must not put the checkout (and its uninstrumented
	# in-place _C) ahead of $(SANITIZE_DIR); the -P check proves which _C is loaded.
	# --capture=sys lets a sanitizer report (written to fd 2) through pytest.
	export LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libstdc++.so)" \
		ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 \
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1; \
	PYTHONPATH=$(SANITIZE_DIR) $(PY) -P -c "import sys, poisonkit._C as c; \
		sys.exit(0 if '/sanitize/' in c.__file__ else 'sanitize: loaded ' + c.__file__)" && \
	$(PY) -m pytest -q --capture=sys --import-mode=importlib -p no:cacheprovider \
		-o pythonpath="$(SANITIZE_DIR) ." $(SANITIZE_TESTS)

demo: build
	$(PY) -m poisonkit demo --out out/demo

bench: build dali
	$(PY) -m pytest -q -o python_files="bench_*.py" benchmarks --benchmark-only \
		--benchmark-json=benchmarks/results/pytest-benchmark.json
	$(PY) -m poisonkit bench --out benchmarks/results

clean:
	rm -rf build poisonkit/_C*.so
