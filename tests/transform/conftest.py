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
    drop_raw_column,
    executable,
    extract,
    last_state,
    load_raw,
    read_marts,
)

# Fields WHOOP begins to send on recent sleeps before the second runs (sandbox.add_fields: dotted paths).
ADDED_FIELDS = {"sleeps": {"score.sleep_latency_milli": 420000, "daily_step_total": 8000}}


@pytest.fixture(scope="session")
def singer_loads(tmp_path_factory) -> SingerLoads:
    workdir = tmp_path_factory.mktemp("singer")
    with Sandbox(seed=11, days=30, athletes=ATHLETES, rate_limits=[], workouts_at=(3, 4)) as sandbox:
        first = tuple(extract(sandbox, a, workdir, "first", None) for a in range(ATHLETES))
        # Deleted before the first dbt build (the tap's reconciliation finds it on athlete 1's next run), and
        # served again by WHOOP before the second run: the incremental run must bring it back.
        restored = sandbox.record_near("workout", athlete=1, days_ago=4)
        sandbox.delete_record("workout", restored["id"])
        again = extract(sandbox, 1, workdir, "first-again", last_state(first[1]))
        # What the second run must carry into the marts: late scoring, a past-dated workout, an edited sleep
        # and a cycle that closed while a new one began; and deletions to take out of every fact: a workout, a
        # sleep (its recovery goes with it), and a whole day (a cycle with its sleeps and recovery).
        sandbox.rescore_pending()
        sandbox.add_past_workout(athlete=0, days_ago=10)
        edited_sleep = sandbox.edit_sleep(athlete=0, days_ago=5)
        sandbox.start_new_cycle(athlete=1)
        deleted = {
            "workout": sandbox.record_near("workout", athlete=0, days_ago=3)["id"],
            "sleep": sandbox.record_near("sleep", athlete=1, days_ago=6)["id"],
            "cycle": sandbox.record_near("cycle", athlete=0, days_ago=8)["id"],
        }
        sandbox.delete_record("workout", deleted["workout"])
        sandbox.delete_record("sleep", deleted["sleep"])
        day_sleeps = [
            r.key
            for r in sandbox.athletes[0].records["sleep"].items
            if r.body["cycle_id"] == deleted["cycle"]
        ]
        for sleep_id in day_sleeps:
            sandbox.delete_record("sleep", sleep_id)
        sandbox.delete_record("cycle", deleted["cycle"])
        sandbox.restore_record("workout", restored["id"])
        for stream, fields in ADDED_FIELDS.items():
            sandbox.add_fields(stream, fields, since_days_ago=5)
        states = (last_state(first[0]), last_state(again))
        second = tuple(extract(sandbox, a, workdir, "second", states[a]) for a in range(ATHLETES))
    changes = {"deleted": deleted, "restored": restored["id"], "edited_sleep": edited_sleep["id"]}
    return SingerLoads((*first, again), second, changes)


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
    # Body measurements as an upgraded deployment has them until their weekly re-read: the second load (not
    # due) leaves the column missing through every build below, which must read NULL for it.
    drop_raw_column(path, "body_measurement", "unmodelled_fields")
    dbt("build")
    after_first = read_marts(path)
    load_raw(path, singer_loads.second)
    # No lookback: only what the second load touched is rebuilt, so equality below tests the change tracking.
    # The unit tests ran in the first build and read no loaded data.
    dbt("build", "--exclude-resource-type", "unit_test", "--vars", "{whoop_reprocess_days: 0}")
    incremental_results = dbt.run_results()
    incremental = read_marts(path)
    dbt("run", "--full-refresh")
    return DuckdbRun(dbt, path, after_first, incremental, read_marts(path), incremental_results)
