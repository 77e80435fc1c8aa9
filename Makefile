# Meshline — `make run` and `make test` set up everything they need on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
CACHE ?= $(HOME)/.cache/meshline
BIN := $(VENV)/bin
STAMP := $(VENV)/.meshline-installed
PYTEST_ARGS ?=

.PHONY: all venv prism run check test unit lint docs bench clean

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

lint: venv
	$(BIN)/ruff check meshline tests bench
	$(BIN)/ruff format --check meshline tests bench
	$(BIN)/mypy

# The fast tier: lint, types, the pipelines' own tests, unit tests, and the benchmark harness
# on tiny inputs (every variant's output compared).
check: venv lint
	$(BIN)/meshline validate pipelines/*.yaml
	$(BIN)/meshline test pipelines/*.yaml
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)
	$(BIN)/python -m bench.run --smoke

# Everything: the fast tier, then the tests against real servers and runners.
test: check prism
	$(BIN)/pytest tests/integration tests/e2e --durations=25 $(PYTEST_ARGS)

# The generated sections of docs/ (connector and transformation reference pages, the CLI page,
# included pipelines) from the config schemas and the CLI parser; prose around them is kept.
docs: venv
	$(BIN)/python -m meshline.docgen

unit: venv
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

bench: venv
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf out bench/out .pytest_cache .ruff_cache .mypy_cache
