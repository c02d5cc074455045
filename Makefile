# memloss: `make demo` runs the main job, `make test` passes the tests.
# Both set themselves up on a fresh machine (a virtual environment in .venv).
PYTHON ?= python3
VENV ?= .venv
# torch: with TORCH=reuse (the default) a torch that $(PYTHON) already has is reused (.venv is
# then created with --system-site-packages, so nothing is downloaded for it); otherwise, or
# with TORCH=install, TORCH_SPEC is installed into .venv, e.g. for a CUDA wheel:
# `make TORCH=install TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cu124" setup`
TORCH ?= reuse
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT ?= demo-out
PYTEST_ARGS ?=

.PHONY: setup test test-all demo bench bench-gate dashboard clean

$(STAMP): pyproject.toml
	test -x $(PY) || if [ "$(TORCH)" = reuse ] && $(PYTHON) -c "import torch" 2>/dev/null; then \
		$(PYTHON) -m venv --system-site-packages $(VENV); else $(PYTHON) -m venv $(VENV); fi
	if [ "$(TORCH)" = install ] || ! $(PY) -c "import torch" 2>/dev/null; then \
		$(PY) -m pip install -q "$(TORCH_SPEC)"; fi
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

setup: $(STAMP)

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-all: setup
	$(PY) -m pytest -q -m "not gpu" $(PYTEST_ARGS)

demo: setup
	$(PY) -m memloss demo --out $(DEMO_OUT)

# pytest-benchmark: one recurrent step per cell x scheme x path (docs/performance.md)
bench: setup
	$(PY) -m pytest tests/benchmarks --benchmark-enable --benchmark-only $(PYTEST_ARGS)

# the regression gate: asv measures BASE and HEAD (committed) in its virtualenv, then
# benchmarks.compare fails on a slowdown beyond 1.2x that the samples tell from noise
BASE ?= main
GATE_BENCH ?= (TimeLayer|RatioToTorchNN).*, 256, 32, 'cpu'\)|PeakMemory.*'cpu'\)|Quality
bench-gate: setup
	$(VENV)/bin/asv machine --yes >/dev/null
	-$(VENV)/bin/asv continuous --factor 1.2 --bench "$(GATE_BENCH)" $(BASE) HEAD
	$(PY) -m benchmarks.compare $$(git rev-parse $(BASE)) $$(git rev-parse HEAD)

# asv's HTML dashboard of .asv/results, with its scripts vendored: opens offline
dashboard: setup
	$(PY) -m benchmarks.dashboard

clean:
	rm -rf $(VENV) .pytest_cache $(DEMO_OUT) reports-out
