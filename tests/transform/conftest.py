"""Fixtures for the dbt tests: Singer output of the real tap against the WHOOP sandbox, before and after WHOOP
changed data."""

from __future__ import annotations

import pytest
from whoop_sandbox import Sandbox

from .pipeline import (
    ATHLETES,
    REPO,
    Dbt,
    DuckdbRun,
    SingerLoads,
    executable,
    extract,
    last_state,
    load_raw,
    read_marts,
)


@pytest.fixture(scope="session")
def singer_loads(tmp_path_factory) -> SingerLoads:
    workdir = tmp_path_factory.mktemp("singer")
    with Sandbox(seed=11, days=30, athletes=ATHLETES, rate_limits=[]) as sandbox:
        first = tuple(extract(sandbox, a, workdir, "first", None) for a in range(ATHLETES))
        # What the second run must carry into the marts: late scoring, a past-dated workout, an edited sleep
        # and a cycle that closed while a new one began.
        sandbox.rescore_pending()
        sandbox.add_past_workout(athlete=0, days_ago=10)
        sandbox.edit_sleep(athlete=0, days_ago=5)
        sandbox.start_new_cycle(athlete=1)
        second = tuple(extract(sandbox, a, workdir, "second", last_state(first[a])) for a in range(ATHLETES))
    return SingerLoads(first, second)


@pytest.fixture(scope="session")
def duckdb_run(singer_loads: SingerLoads, tmp_path_factory) -> DuckdbRun:
    workdir = tmp_path_factory.mktemp("dbt-duckdb")
    path = workdir / "whoop.duckdb"
    dbt = Dbt(
        executable("WHOOP_DBT_DUCKDB", REPO / ".meltano/utilities/dbt-duckdb/venv/bin/dbt"),
        workdir,
        {"WHOOP_DUCKDB_PATH": str(path), "DBT_TARGET": "duckdb"},
    )
    load_raw(path, singer_loads.first)
    dbt("build")
    after_first = read_marts(path)
    load_raw(path, singer_loads.second)
    # No lookback: only what the second load touched is rebuilt, so equality below tests the change tracking.
    dbt("build", "--vars", "{whoop_lookback_days: 0}")
    incremental_results = dbt.run_results()
    incremental = read_marts(path)
    dbt("run", "--full-refresh")
    return DuckdbRun(dbt, path, after_first, incremental, read_marts(path), incremental_results)
