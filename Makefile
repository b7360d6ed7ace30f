# PARLE: `make run` and `make test` each set everything up on a fresh machine first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.parle-setup
NPROC  := $(shell nproc 2>/dev/null || echo 2)

.PHONY: setup run test test-unit lint format typecheck bench clean

setup: $(STAMP)

# Idempotent: re-runs only when pyproject.toml changes (or the venv is gone).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	CMAKE_BUILD_PARALLEL_LEVEL=$(NPROC) $(BIN)/python -m pip install --quiet -e '.[cpu,dev]'
	$(BIN)/parle models fetch
	touch $@

run: setup
	$(BIN)/parle serve

test: setup
	$(BIN)/python -m pytest -m "not gpu"

test-unit: setup
	$(BIN)/python -m pytest -m unit

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: setup
	$(BIN)/mypy

bench: setup
	$(BIN)/python bench/bench_turn.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache reply.wav
