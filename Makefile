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
# every tool runs through .venv's interpreter (`python -m ...`): a .venv that reuses a system
# site where the tool is already installed has no script of it in $(VENV)/bin
ASV := $(PY) -m asv
STAMP := $(VENV)/.installed
DEMO_OUT ?= demo-out
PYTEST_ARGS ?=

.PHONY: setup test test-all test-tiers demo bench bench-gate dashboard fidelity-doc clean

$(STAMP): pyproject.toml
	test -x $(PY) || if [ "$(TORCH)" = reuse ] && $(PYTHON) -c "import torch" 2>/dev/null; then \
		$(PYTHON) -m venv --system-site-packages $(VENV); else $(PYTHON) -m venv $(VENV); fi
	if [ "$(TORCH)" = install ] || ! $(PY) -c "import torch" 2>/dev/null; then \
		$(PY) -m pip install -q "$(TORCH_SPEC)"; fi
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

setup: $(STAMP)

# the tiers (docs/testing.md): `make test` runs the fast one (pyproject's addopts leave out
# the tests marked slow, full, e2e, faults and gpu); `make test-all` runs every tier (gpu tests
# skip without a CUDA device); `make test-tiers` every tier but the fast one (CI runs `make
# test`, then this). A tier with no test in it (pytest's exit status 5) is not a failure.
TIERS ?= slow or full or e2e or faults or gpu
SLOW_TIMEOUT ?= 900
# the tests run in parallel, one pytest-xdist worker per core (at most 4: each worker is a
# process with torch loaded); `make test PARALLEL=` runs them in one process
PARALLEL ?= -n auto --maxprocesses 4 --dist worksteal
test: setup
	$(PY) -m pytest -q $(PARALLEL) $(PYTEST_ARGS)

test-all: setup
	$(PY) -m pytest -q -m "" $(PARALLEL) --timeout=$(SLOW_TIMEOUT) $(PYTEST_ARGS)

test-tiers: setup
	$(PY) -m pytest -q -m "$(TIERS)" $(PARALLEL) --timeout=$(SLOW_TIMEOUT) $(PYTEST_ARGS) || [ $$? -eq 5 ]

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
	$(ASV) machine --yes >/dev/null
	-$(ASV) continuous --factor 1.2 --bench "$(GATE_BENCH)" $(BASE) HEAD
	$(PY) -m benchmarks.compare $$(git rev-parse $(BASE)) $$(git rev-parse HEAD)

# asv's HTML dashboard of .asv/results, with its scripts vendored: opens offline
dashboard: setup
	$(PY) -m benchmarks.dashboard

# docs/fidelity.md's generated parts from the committed results in docs/results/ (which
# parts, from which files: docs/results/fidelity-doc.toml); `--check` in FIDELITY_DOC_ARGS
# writes nothing and exits 1 naming a stale block
FIDELITY_DOC_ARGS ?=
fidelity-doc: setup
	$(PY) tools/fidelity_doc.py $(FIDELITY_DOC_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache $(DEMO_OUT) reports-out
