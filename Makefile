# Entry points: `make demo` (whole pipeline on the embedded DuckDB default) and `make test` (the whole suite).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
# The tap and the WHOOP sandbox are installed editable into the root venv: tests, benchmarks and the demo import them.
LOCAL_PROJECTS := tap-whoop/pyproject.toml sandbox/pyproject.toml
LOCAL_PACKAGES := -e ./tap-whoop -e ./sandbox

.PHONY: install plugins demo test lint lock-plugins

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q uv==$(UV_VERSION)

# One pinned environment for tests, benchmarks and the demo driver; re-synced whenever the pins change.
$(VENV)/.installed: $(BIN)/uv requirements/dev.txt $(LOCAL_PROJECTS) Makefile
	$(BIN)/uv pip install -q --python $(BIN)/python -r requirements/dev.txt $(LOCAL_PACKAGES)
	touch $@

install: $(VENV)/.installed

# Meltano's per-plugin virtualenvs under .meltano/, pinned by meltano.yml and plugins/requirements/*.txt.
# Cheap when nothing changed (Meltano skips plugins whose pip_url fingerprint matches).
plugins: install
	$(BIN)/meltano install

demo: plugins
	scripts/demo.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The end-to-end tests run `meltano run` over the installed plugins, so they are installed first.
test: plugins lint
	$(BIN)/pytest

# Re-resolve the plugins' pinned dependency sets (after changing a version in meltano.yml and its .in file).
lock-plugins: install
	for f in plugins/requirements/*.in; do \
		$(BIN)/uv pip compile -q "$$f" -o "$${f%.in}.txt" --python-version 3.11 || exit 1; \
	done
