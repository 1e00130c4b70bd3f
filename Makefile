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
# Each test starts Python processes by the hundred (Meltano, the tap, the targets, dbt, Airflow), all importing the
# same libraries: Python keeps their compiled bytecode (__pycache__) even where the environment asks it not to
# (PYTHONDONTWRITEBYTECODE), or every process compiles them again.
unexport PYTHONDONTWRITEBYTECODE

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

# The report (reports/, Evidence) from the Meltano environment's warehouse (MELTANO_ENVIRONMENT=prod: Snowflake,
# MELTANO_ENVIRONMENT=postgres: PostgreSQL)
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
# Six lanes on the 2 cores (much of the suite waits on processes, rate windows and Airflow, one task at a time,
# and more lanes than cores keep both busy to the end; with four, and then five, the last minutes ran at half
# load or less): the tap's and the sandbox's suites (TAP_TESTS), then the report's (REPORT_TESTS: a browser
# over a site Evidence builds, placed where it evens the lanes' ends); the rest of the suite in two halves, the
# pipelines through Meltano (PIPELINE_TESTS) and the rest (the pipelines in both run their processes far from
# UTC: tests/zones.py); the DuckDB pipeline by Airflow, then by Meltano (DUCKDB_PIPELINE_TESTS, which would
# otherwise leave the pipelines lane the last by minutes); the fast subsets at the dates (test-dates: the tap's
# and the sandbox's at fixed and random dates, each in a zone); and the checks: make lint (in a lane, not before
# them: it uses one core for half a minute; -k goes on after a failure), then test-pythons (the tap's fast
# subset on each Python, each in a zone far from UTC, so it is the zone lane too; make test-timezones runs the
# zones alone).
# Each lane's output shows as it comes, every line prefixed with its lane, and is kept whole in
# test-artifacts/<lane>.log; any lane failing fails make test; each lane's wall and CPU time print as it ends,
# then what each failed lane said of its failures (failed tests, failed dates with their replay seed, failed
# sessions, make's failed targets), so the tail of a CI log names the cause.
# Meltano is not installed again once the lanes run: `meltano install` empties the plugins' run directories
# (.meltano/run/<plugin>), where a running `meltano run` keeps its generated config.
# `make test-all` is the whole matrix (every date, zone and Python with the whole suites), nightly in CI.
PIPELINE_TESTS := tests/e2e
REPORT_TESTS := tests/report
TAP_TESTS := sandbox/tests tap-whoop/tests
DUCKDB_PIPELINE_TESTS := tests/e2e/test_whoop_duckdb.py
# A lane's CPU time is what its processes used (bash's `times` in the lane's subshell, not in a pipe, where it
# would be a fresh process's): beside the wall time it says whether a lane was working or waiting.
LANE = lane() { name=$$1; shift; start=$$SECONDS; "$$@" 2>&1 | tee test-artifacts/$$name.log | sed -u "s/^/[$$name] /"; \
	code=$$?; times > test-artifacts/$$name.times; \
	cpu=$$(tail -1 test-artifacts/$$name.times | awk '{ split($$1, u, /[ms]/); split($$2, s, /[ms]/); printf "%d", u[1] * 60 + u[2] + s[1] * 60 + s[2] }'); \
	echo "==> lane $$name: exit $$code in $$(( (SECONDS - start) / 60 )) min $$(( (SECONDS - start) % 60 )) s, CPU $$(( cpu / 60 )) min $$(( cpu % 60 )) s"; return $$code; }
test: plugins $(SQLFLUFF_VENV)/.installed
	@mkdir -p test-artifacts
	@set -o pipefail; $(LANE); began=$$SECONDS; \
	lane airflow $(BIN)/pytest -p no:cacheprovider --durations=10 -m "not image" tests/orchestrate $(DUCKDB_PIPELINE_TESTS) & airflow=$$!; \
	lane pipelines $(BIN)/pytest -p no:cacheprovider --durations=10 $(PIPELINE_TESTS) $(addprefix --ignore=,$(DUCKDB_PIPELINE_TESTS)) & pipelines=$$!; \
	lane suite $(BIN)/pytest tests $(addprefix --ignore=,tests/orchestrate $(PIPELINE_TESTS) $(REPORT_TESTS)) -m "not image" --durations=15 & suite=$$!; \
	lane tap $(BIN)/pytest $(TAP_TESTS) $(REPORT_TESTS) --durations=10 & tap=$$!; \
	lane dates $(MAKE) --no-print-directory test-dates & dates=$$!; \
	lane checks $(MAKE) --no-print-directory -k lint test-pythons & checks=$$!; \
	failed=; for lane in suite tap pipelines airflow dates checks; do wait $${!lane} || failed="$$failed $$lane"; done; \
	for lane in $$failed; do \
		echo "==> lane $$lane failed; what it said last (all of it in test-artifacts/$$lane.log):"; \
		grep -E "^(FAILED|ERROR) |FAILED \(|Error:|replay|nox > \*|Session .* (failed|aborted)|\*\*\* \[" \
			test-artifacts/$$lane.log | tail -40 | sed "s/^/[$$lane] /"; \
	done; \
	echo "==> make test in $$(( (SECONDS - began) / 60 )) min $$(( (SECONDS - began) % 60 )) s: $${failed:+lanes failed:$$failed}$$([ -n "$$failed" ] || echo every lane passed) (logs in test-artifacts/)"; \
	[ -z "$$failed" ]

.PHONY: test-all
test-all: plugins lint
	$(BIN)/pytest
	$(TEST_TIMEZONES) --full
	$(BIN)/python tests/matrix/dates.py --full
	cd tap-whoop && ../$(BIN)/nox -s tests --error-on-missing-interpreters

# The sandbox's and the tap's fast tests that do time arithmetic (marker `clock`) and the console-script smoke
# tests at five fixed dates (both DST changes
# in the US and the EU, a year end) and two drawn at random in 2026-2030 (seed printed; replay with
# WHOOP_TEST_DATES_SEED=<seed>).
.PHONY: test-dates
test-dates: install
	$(BIN)/python tests/matrix/dates.py

# The unit tests only: everything not marked `slow` (no processes, servers, dbt, Meltano or Airflow; the markers
# are described in pyproject.toml). `make test` still runs everything.
test-fast: install
	$(BIN)/pytest -m "not slow"

# The tap's and the sandbox's fast subsets (and console-script smoke tests) with the machine in zones far from
# UTC (+14, -11, +5:45): every time they write or compare is UTC whatever the zone. The pipelines run their
# processes in those zones inside the suite itself (tests/zones.py); make test-all runs them in each zone too.
.PHONY: test-timezones
TEST_TIMEZONES := $(BIN)/python tests/matrix/timezones.py
test-timezones: install
	$(TEST_TIMEZONES)

# The tap on every Python its classifiers claim, installed as a user installs it: the oldest at the lock (the lock
# must pin everything; smoke tests only, as the tap lane runs the whole suite on that Python at those pins), the
# others at the newest releases its ranges allow with the fast subset and smoke tests, each with the machine in a
# zone far from UTC (tap-whoop/noxfile.py; make test-all runs the whole suite at both resolutions on each).
# Interpreters not installed are skipped, and the summary says which; on CI (CI or REQUIRE_ALL_PYTHONS set, as
# .ci/run does) a missing one fails.
.PHONY: test-pythons
test-pythons: install
	cd tap-whoop && ../$(BIN)/nox $(if $(CI)$(REQUIRE_ALL_PYTHONS),--error-on-missing-interpreters,) -- tests -m "not slow or smoke"

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
