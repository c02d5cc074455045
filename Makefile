# memloss: `make demo` runs the main job, `make test` passes the tests.
# Both set themselves up on a fresh machine (a virtual environment in .venv).
PYTHON ?= python3
VENV ?= .venv
# torch is installed only when the environment has none; override for a CUDA build,
# e.g. `make TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cu124" setup`
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT ?= demo-out
PYTEST_ARGS ?=

.PHONY: setup test test-all demo bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

setup: $(STAMP)

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-all: setup
	$(PY) -m pytest -q -m "not gpu" $(PYTEST_ARGS)

demo: setup
	$(PY) -m memloss demo --out $(DEMO_OUT)

bench: setup
	$(PY) -m pytest tests/benchmarks --benchmark-enable --benchmark-only $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache $(DEMO_OUT)
