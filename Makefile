# Entry points: `make demo` (whole pipeline on the embedded DuckDB default) and `make test` (the whole suite).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9

.PHONY: install test lint

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q uv==$(UV_VERSION)

# One pinned environment for tests, benchmarks and the demo driver; re-synced whenever the pins change.
$(VENV)/.installed: $(BIN)/uv requirements/dev.txt
	$(BIN)/uv pip install -q --python $(BIN)/python -r requirements/dev.txt
	touch $@

install: $(VENV)/.installed

lint: install
	$(BIN)/ruff check .

test: install lint
	$(BIN)/pytest
