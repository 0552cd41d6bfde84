# Every target sets up what it needs: a fresh clone only needs `make example` or `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: example test lint suite test-all bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# The example service: Ctrl-C (or SIGTERM) stops it; its state survives in examples/state/.
example: $(VENV)/.installed
	$(BIN)/python -m graceful examples.counter:main

# Lint, type-check, then the whole suite (every scenario on asyncio and on uvloop).
test: lint suite

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

suite: $(VENV)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The suite on every Python 3.10-3.13 found on this machine, one venv each.
test-all:
	scripts/test-all-pythons

# The benchmarks (the init one needs root and installs tini, dumb-init and catatonit;
# the supervisor one installs supervisord with apt-get and circus into a venv of its own).
bench: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_runtime.py --runs 150
	$(BIN)/python benchmarks/bench_init.py --runs 40
	$(BIN)/python benchmarks/bench_supervisor.py --runs 10
