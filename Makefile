# Every target sets up what it needs: a fresh clone only needs `make example` or `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: example test lint suite test-all test-rolling test-containers docs bench mutants

$(VENV)/.installed: pyproject.toml setup.py graceful/_pid1/init.c
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

# Zero failed requests in rolling restarts behind haproxy (installed with apt-get when
# missing, which needs root); the full benchmark is benchmarks/rolling.py.
test-rolling: $(VENV)/.installed
	$(BIN)/python -m pytest tests/rolling $(PYTEST_ARGS) --timeout 900

# The container tests: Dockerfile.example and Dockerfile.web.example built and run
# with podman, and the Kubernetes examples rendered, validated and played. The set-up script installs
# podman and friends on a fresh machine (root), keeps podman's configuration and
# storage under .containers/ and builds the base image once.
test-containers: $(VENV)/.installed-containers
	scripts/containers-setup
	$(BIN)/python -m pytest tests/containers $(PYTEST_ARGS)

$(VENV)/.installed-containers: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[dev,containers]'
	touch $@

# The documentation site, from docs/ and mkdocs.yml, built into site/ (warnings are
# errors): open site/index.html, or run `$(BIN)/mkdocs serve` for a live preview.
# NO_MKDOCS_2_WARNING quiets the theme's notice about its successor on every build.
docs: $(VENV)/.installed-docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

$(VENV)/.installed-docs: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[dev,docs]'
	touch $@

# The suite on every Python 3.10-3.13 found on this machine, one venv each.
test-all:
	scripts/test-all-pythons

# The benchmarks (the init one needs root and installs tini, dumb-init and catatonit;
# the supervisor one installs supervisord with apt-get and circus into a venv of its
# own; the servers one installs wrk, the rolling one haproxy). They run from a regular
# install in .venv-bench, as users run graceful: an editable install adds an import hook
# that costs every Python start 10-15 ms.
BENCH := .venv-bench/bin
.venv-bench/.installed: pyproject.toml setup.py $(shell find graceful -name '*.py' -o -name '*.c')
	$(PYTHON) -m venv .venv-bench
	$(BENCH)/pip install --quiet --upgrade pip
	rm -rf build  # setuptools' build/lib keeps modules deleted since, and the wheel takes them
	$(BENCH)/pip install --quiet '.[dev]'
	touch $@

bench: .venv-bench/.installed
	$(BENCH)/python benchmarks/bench_runtime.py --runs 150
	$(BENCH)/python benchmarks/bench_init.py --runs 40
	$(BENCH)/python benchmarks/bench_health.py --runs 30
	$(BENCH)/python benchmarks/bench_supervisor.py --runs 10
	$(BENCH)/python benchmarks/bench_observe.py --runs 5
	$(BENCH)/python benchmarks/bench_servers.py --rounds 5
	$(BENCH)/python benchmarks/bench_websockets.py --rounds 3 --clients 1000
	$(BENCH)/python benchmarks/rolling.py --rounds 4 --repeat 2

# Break promised behaviour on purpose, one curated mutation at a time (scripts/mutations.py),
# and check that a test catches each; not in .ci/run: it takes a while.
mutants: $(VENV)/.installed
	$(BIN)/python scripts/mutants.py $(MUTANTS_ARGS)
