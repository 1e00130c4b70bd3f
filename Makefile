# Entry points: `make demo` (whole pipeline on the embedded DuckDB default) and `make test` (the whole suite).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
# The tap, the WHOOP sandbox and the report builder are installed editable into the root venv: tests, benchmarks and
# the demo import them.
LOCAL_PROJECTS := tap-whoop/pyproject.toml sandbox/pyproject.toml reports/builder/pyproject.toml
LOCAL_PACKAGES := -e ./tap-whoop -e ./sandbox -e ./reports/builder

.PHONY: install plugins demo report test test-fast lint lint-sql lint-types lock-plugins

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

# The report (reports/, Evidence) from the Meltano environment's warehouse (MELTANO_ENVIRONMENT=prod: Snowflake)
# into reports/build/index.html.
report: plugins
	$(BIN)/meltano invoke evidence:build

lint: install lint-sql lint-types lint-workflows
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The GitHub Actions workflows against GitHub's schema (they cannot run here; this catches what would not load).
.PHONY: lint-workflows
lint-workflows: install
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

# mypy, configured in pyproject.toml ([tool.mypy]: what it checks and how strictly).
lint-types: install
	$(BIN)/mypy

# SQLFluff (dbt templater, transform/.sqlfluff) in a venv of its own: the templater needs dbt-duckdb beside it, and
# the plugin's venv under .meltano/ stays exactly what production installs. dbt compiles against an in-memory
# DuckDB, so linting never touches data/whoop.duckdb.
SQLFLUFF_VENV := .venv-sqlfluff
$(SQLFLUFF_VENV)/.installed: $(BIN)/uv requirements/sqlfluff.txt
	$(BIN)/uv venv -q --allow-existing --python $(PYTHON) $(SQLFLUFF_VENV)
	$(BIN)/uv pip install -q --python $(SQLFLUFF_VENV)/bin/python -r requirements/sqlfluff.txt
	touch $@

lint-sql: $(SQLFLUFF_VENV)/.installed
	cd transform && WHOOP_DUCKDB_PATH=:memory: DBT_TARGET=duckdb ../$(SQLFLUFF_VENV)/bin/sqlfluff lint models

# The end-to-end tests run `meltano run` over the installed plugins, so they are installed first.
# Three lanes, so the whole of it fits CI's 90 minutes on 2 cores (the suite mostly waits on processes, rate
# windows and Airflow, one task at a time): the suite, then test-timezones (both run the pipeline's dbt in place,
# in transform/); beside them the Airflow tests (dbt in Cosmos's copies of the project) and test-dates +
# test-pythons (the sandbox's and the tap's suites in temporary directories and nox's venvs). The side lanes'
# output is printed after the suite's (and kept in test-artifacts/); any lane failing fails make test.
# Meltano is not installed again once the lanes run: `meltano install` empties the plugins' run directories
# (.meltano/run/<plugin>), where a running `meltano run` keeps its generated config.
test: plugins lint
	@mkdir -p test-artifacts
	@echo "==> beside the suite: pytest tests/orchestrate, make test-dates test-pythons (their output follows)"
	@$(BIN)/pytest -p no:cacheprovider tests/orchestrate > test-artifacts/airflow.log 2>&1 & airflow=$$!; \
	$(MAKE) --no-print-directory test-dates test-pythons > test-artifacts/dates-pythons.log 2>&1 & checks=$$!; \
	$(BIN)/pytest --ignore=tests/orchestrate && $(TEST_TIMEZONES); main=$$?; \
	wait $$airflow; airflow=$$?; wait $$checks; checks=$$?; \
	for lane in airflow dates-pythons; do echo "==> $$lane (test-artifacts/$$lane.log)"; cat test-artifacts/$$lane.log; done; \
	echo "==> make test: suite + test-timezones exit $$main, Airflow tests exit $$airflow, test-dates + test-pythons exit $$checks"; \
	[ $$main -eq 0 ] && [ $$airflow -eq 0 ] && [ $$checks -eq 0 ]

# The sandbox's and the tap's suites at five fixed dates (both DST changes in the US and the EU, a year end).
.PHONY: test-dates
test-dates: install
	$(BIN)/python tests/matrix/dates.py

# The unit tests only: everything not marked `slow` (no processes, servers, dbt, Meltano or Airflow; the markers
# are described in pyproject.toml). `make test` still runs everything.
test-fast: install
	$(BIN)/pytest -m "not slow"

# The tap's suite and the DuckDB pipeline (tap, target, dbt) with the machine in zones far from UTC (+14, -11,
# +5:45): every time the pipeline writes or compares is UTC whatever the zone.
.PHONY: test-timezones
TEST_TIMEZONES := $(BIN)/python tests/matrix/timezones.py
test-timezones: plugins
	$(TEST_TIMEZONES)

# The tap's suite on every Python its classifiers claim, installed as a user installs it, against the lock and
# the newest releases its ranges allow (tap-whoop/noxfile.py). Interpreters not installed are skipped, and the
# summary says which; on CI (CI or REQUIRE_ALL_PYTHONS set, as .ci/run does) a missing one fails.
.PHONY: test-pythons
test-pythons: install
	cd tap-whoop && ../$(BIN)/nox $(if $(CI)$(REQUIRE_ALL_PYTHONS),--error-on-missing-interpreters,)

# What goes to PyPI: sdist and wheel of the tap, and of the WHOOP sandbox its `dev` extra names, in dist/,
# checked by twine.
.PHONY: package
package: install
	rm -rf dist/tap-whoop dist/whoop-sandbox
	$(BIN)/python -m build -q tap-whoop -o dist/tap-whoop
	$(BIN)/python -m build -q sandbox -o dist/whoop-sandbox
	$(BIN)/twine check --strict dist/tap-whoop/* dist/whoop-sandbox/*

# Re-resolve the plugins' pinned dependency sets (after changing a version in meltano.yml and its .in file).
lock-plugins: install
	$(BIN)/uv pip compile -q requirements/sqlfluff.in -o requirements/sqlfluff.txt --python-version 3.11
	for f in plugins/requirements/*.in; do \
		$(BIN)/uv pip compile -q "$$f" -o "$${f%.in}.txt" --python-version 3.11 || exit 1; \
	done

# --- orchestrate/: the Airflow DAGs (one task per dbt model, Astronomer Cosmos) and the Astronomer image ---
.PHONY: dbt-manifests check-dbt-manifests dag-parse-time astro-project lock-astro

# The dbt manifests the DAGs are rendered from (dbt parse through each scheduled dbt plugin); rerun after changing
# transform/. The DAG file refuses a stale one, naming this target.
dbt-manifests: plugins
	$(BIN)/python orchestrate/dags/dbt_manifest.py build

# Exit 1 when a manifest is missing or older than transform/.
check-dbt-manifests: install
	$(BIN)/python orchestrate/dags/dbt_manifest.py check

# How long Airflow takes to parse orchestrate/dags (goal: under 2 s a parse), beside a one-task DAG file.
dag-parse-time: dbt-manifests
	$(BIN)/meltano invoke airflow:parse-time

# The Astro project the Astronomer image is built from: make astro-project DEST=<dir from `astro dev init`>.
astro-project:
	@test -n "$(DEST)" || { echo "usage: make astro-project DEST=<astro project directory>" >&2; exit 2; }
	$(PYTHON) orchestrate/astro/project.py "$(DEST)"

# Re-resolve the image's Meltano venv (orchestrate/astro/meltano.in).
lock-astro: install
	$(BIN)/uv pip compile -q orchestrate/astro/meltano.in -o orchestrate/astro/meltano.txt --python-version 3.11
