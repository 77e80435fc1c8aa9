# Meshline — `make run` and `make test` set up everything they need on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
CACHE ?= $(HOME)/.cache/meshline
BIN := $(VENV)/bin
STAMP := $(VENV)/.meshline-installed
PYTEST_ARGS ?=
# Workers for the server tiers (pytest-xdist). Their tests mostly wait (servers, runners, queues),
# so more workers than cores pay; tests sharing a server started once run on one worker
# (tests/conftest.py groups them).
WORKERS ?= 4
PYTEST_SERVERS := $(BIN)/pytest -n $(WORKERS) --dist loadgroup --durations=25
# Unit tests compute: one worker per core.
UNIT_WORKERS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all venv prism run static check test integration e2e unit lint docs bench soak clean

all: test

# The virtualenv, with every pin from requirements*.lock; pip's cache lives under ~/.cache/meshline.
$(STAMP): requirements.lock requirements-dev.lock setup.py pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --cache-dir $(CACHE)/pip "pip==26.3" "setuptools==84.2.1" "wheel==0.48.0"
	$(BIN)/python -m pip install --quiet --cache-dir $(CACHE)/pip -r requirements.lock -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --cache-dir $(CACHE)/pip --no-deps --no-build-isolation -e .
	@touch $(STAMP)

venv: $(STAMP)

# The quickstart integration on the direct runner; outputs land under out/quickstart/.
run: venv
	@rm -rf out/quickstart
	$(BIN)/meshline run pipelines/quickstart.yaml
	@echo
	@echo "Outputs:"
	@find out/quickstart -type f | sort | sed 's/^/  /'

# The Prism binary for the pinned Beam, built once from its Go source (listening on 127.0.0.1 only) into ~/.cache/meshline/prism/.
prism: venv
	@$(BIN)/python -m meshline.runners.prism

# `$(took)` as a recipe's last line prints how long the recipe ran: make expands a whole recipe
# (so the `$(shell date)` in it) before its first line runs.
took = @echo "make $@: $$(( $$(date +%s) - $(shell date +%s) )) s"

LINT = $(BIN)/ruff check meshline tests bench && $(BIN)/ruff format --check meshline tests bench && $(BIN)/mypy

lint: venv
	$(LINT)

# What needs no pytest: lint, types, the included pipelines' own checks, and the benchmark
# harness on tiny inputs (every variant's output compared).
static: venv
	$(LINT)
	$(BIN)/meshline validate pipelines/*.yaml
	$(BIN)/meshline test pipelines/*.yaml
	$(BIN)/python -m bench.run --smoke
	$(took)

# The fast tier: the above and the unit tests.
check: venv
	@$(MAKE) --no-print-directory static
	$(BIN)/pytest -n $(UNIT_WORKERS) tests/unit $(PYTEST_ARGS)
	$(took)

# Connectors against real servers (tests/servers/), on several workers.
integration: venv prism
	$(PYTEST_SERVERS) tests/integration $(PYTEST_ARGS)
	$(took)

# The meshline CLI as a user runs it, on every runner, on several workers.
e2e: venv prism
	$(PYTEST_SERVERS) tests/e2e $(PYTEST_ARGS)
	$(took)

# Everything: `static` runs beside one pool of pytest workers that takes the unit, integration
# and e2e tiers together (the server tiers spend much of their time waiting for servers and
# runners to start, which leaves room for the rest), then the 25 slowest tests.
test: venv prism
	@mkdir -p out
	@( $(MAKE) --no-print-directory static > out/static.log 2>&1; echo $$? > out/static.rc ) & \
	$(PYTEST_SERVERS) tests/unit tests/integration tests/e2e $(PYTEST_ARGS); rc=$$?; wait; \
	echo "--- make static (run beside the tests):"; cat out/static.log; \
	test "$$(cat out/static.rc)" = 0 || { echo "make static failed"; exit 1; }; exit $$rc
	$(took)

# The generated sections of docs/ (connector and transformation reference pages, the CLI page,
# included pipelines) from the config schemas and the CLI parser; prose around them is kept.
docs: venv
	$(BIN)/python -m meshline.docgen

unit: venv
	$(BIN)/pytest -n $(UNIT_WORKERS) tests/unit $(PYTEST_ARGS)

bench: venv prism
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# Kafka → Kafka at 200 events/s for SOAK_MINUTES on Prism and Flink [local]: RSS of every process
# of the run every 30 s, lag, counts; nothing may be lost or left uncommitted. Into bench/SOAK.md.
SOAK_MINUTES ?= 30
soak: venv prism
	$(BIN)/python -m bench.soak --minutes $(SOAK_MINUTES) $(SOAK_ARGS)
	$(took)

clean:
	rm -rf out bench/out .pytest_cache .ruff_cache .mypy_cache
