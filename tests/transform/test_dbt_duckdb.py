"""The dbt project on DuckDB (the embedded default): raw tables from the real tap and target-duckdb, then dbt
build, an incremental run after WHOOP changed data, and a full refresh that must give the same marts."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest
from comparing import approx_floats

from .pipeline import Dbt, DuckdbRun
from .warehouse import FACT_TABLES, MART_TABLES

pytestmark = pytest.mark.slow


def test_incremental_run_equals_full_refresh(duckdb_run: DuckdbRun):
    for table in MART_TABLES:
        assert duckdb_run.incremental[table] == approx_floats(duckdb_run.full_refresh[table]), table
    assert all(duckdb_run.full_refresh[table] for table in MART_TABLES)


def test_incremental_run_merged_the_changes(duckdb_run: DuckdbRun):
    """The second load (rescoring, a past-dated workout, an edited sleep, a new cycle) reached every fact
    through the incremental path, not by rebuilding the tables."""
    statuses = {r["unique_id"].split(".")[-1]: r for r in duckdb_run.incremental_results["results"]}
    for table in FACT_TABLES:
        assert statuses[table]["status"] == "success"
        assert "max(loaded_at)" in statuses[table]["compiled_code"]
        before, after = set(duckdb_run.after_first[table]), set(duckdb_run.incremental[table])
        assert after - before, f"{table}: no row changed"
    assert len(duckdb_run.incremental["fct_workouts"]) == len(duckdb_run.after_first["fct_workouts"]) + 1
    assert len(duckdb_run.incremental["fct_cycles"]) == len(duckdb_run.after_first["fct_cycles"]) + 1


def test_marts_match_raw(duckdb_run: DuckdbRun):
    with duckdb.connect(str(duckdb_run.path), read_only=True) as con:

        def one(sql: str):
            return con.execute(sql).fetchone()

        assert one("select count(distinct id) from raw.cycles") == one(
            "select count(*) from marts.fct_cycles"
        )
        assert one("select count(distinct id) from raw.sleeps") == one(
            "select count(*) from marts.fct_sleeps"
        )
        assert one("select count(distinct id) from raw.workouts") == one(
            "select count(*) from marts.fct_workouts"
        )
        assert one("select count(*) from raw.profile") == one("select count(*) from marts.dim_user")
        # Daily workout figures are the sum of the workouts attached to the same cycle.
        assert one(
            """
            select count(*) from marts.fct_cycles as d
            left join (
                select cycle_id, count(*) as n, sum(strain) as s from marts.fct_workouts group by cycle_id
            ) as w using (cycle_id)
            where d.workout_count != coalesce(w.n, 0) or abs(d.workout_strain - coalesce(w.s, 0)) > 1e-9
            """
        ) == (0,)
        # Scored recoveries reach the daily facts unchanged.
        assert one(
            """
            select count(*) from raw.recoveries as r
            join marts.fct_cycles as d on d.cycle_id = r.cycle_id
            where r.score__recovery_score is distinct from d.recovery_score
            """
        ) == (0,)
        pending = one("select count(*) from marts.fct_cycles where recovery_score_state = 'PENDING_SCORE'")
        assert pending == (0,)


def test_daily_health_is_one_row_per_athlete_per_day(duckdb_run: DuckdbRun):
    """Every day from each athlete's first to last day, each cycle counted on exactly one day, and the day's
    figures those of its first cycle to wake."""
    with duckdb.connect(str(duckdb_run.path), read_only=True) as con:
        per_athlete = con.execute(
            """
            select
                user_id,
                count(*),
                count(distinct date_day),
                datediff('day', min(date_day), max(date_day)) + 1,
                sum(cycle_count),
                count(*) filter (where has_cycle != (cycle_count > 0))
            from marts.fct_daily_health
            group by user_id
            order by user_id
            """
        ).fetchall()
        per_user = "select user_id, count(*) from marts.fct_cycles group by user_id"
        cycles = dict(con.execute(per_user).fetchall())
        mismatched = con.execute(
            """
            select count(*)
            from marts.fct_daily_health as d
            join marts.fct_cycles as c on c.cycle_id = d.cycle_id
            where c.day_cycle_number != 1
                or c.date_day != d.date_day
                or c.strain is distinct from d.strain
                or c.recovery_score is distinct from d.recovery_score
                or c.hours_asleep is distinct from d.hours_asleep
            """
        ).fetchone()
    assert len(per_athlete) == len(cycles) == 2
    for user_id, rows, days, span, counted, inconsistent in per_athlete:
        assert rows == days == span, user_id
        assert counted == cycles[user_id], user_id
        assert inconsistent == 0, user_id
    assert mismatched == (0,)


def test_raw_load_times_are_utc(duckdb_run: DuckdbRun):
    """target-duckdb stamps local wall-clock time unless run as meltano.yml runs it (TZ=UTC). This session
    loaded raw minutes ago; local time in any zone at least 30 minutes off UTC falls outside the window."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with duckdb.connect(str(duckdb_run.path), read_only=True) as con:
        for table in ("cycles", "sleeps", "recoveries", "workouts", "profile", "body_measurement"):
            oldest, newest = con.execute(
                f"select min(_sdc_batched_at), max(_sdc_batched_at) from raw.{table}"
            ).fetchone()
            assert now - dt.timedelta(minutes=30) < oldest <= newest <= now, (table, oldest, newest, now)


def test_source_freshness_and_docs(duckdb_run: DuckdbRun):
    duckdb_run.dbt("source", "freshness")
    sources = json.loads((duckdb_run.dbt.workdir / "target/sources.json").read_text())["results"]
    assert {s["unique_id"].split(".")[-1] for s in sources} == {
        "cycles",
        "sleeps",
        "recoveries",
        "workouts",
        "profile",
        "body_measurement",
    }
    assert {s["status"] for s in sources} == {"pass"}
    assert all(s["criteria"]["warn_after"] == {"count": 6, "period": "hour"} for s in sources)
    assert all(s["criteria"]["error_after"] == {"count": 24, "period": "hour"} for s in sources)

    duckdb_run.dbt("docs", "generate")
    catalog = json.loads((duckdb_run.dbt.workdir / "target/catalog.json").read_text())
    documented = {node.split(".")[-1] for node in catalog["nodes"]}
    assert {"fct_daily_health", "fct_sleeps", "fct_workouts", "dim_date", "dim_user"} <= documented


# Runs in the dbt venv, whose DuckDB is the pipeline's (the root venv's would upgrade the file).
AGE_RAW_ROWS = """
import sys, duckdb
path, table, loaded_at = sys.argv[1:]
with duckdb.connect(path) as con:
    con.execute(f"update raw.{table} set _sdc_batched_at = ?::timestamp", [loaded_at])
"""


def test_source_freshness_warns_and_errors_on_stale_raw(duckdb_run: DuckdbRun, tmp_path: Path):
    stale = tmp_path / "whoop.duckdb"
    shutil.copy(duckdb_run.path, stale)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for table, hours in [("cycles", 30), ("profile", 10)]:
        loaded_at = (now - dt.timedelta(hours=hours)).isoformat(sep=" ")
        python = duckdb_run.dbt.executable.parent / "python"
        subprocess.run(
            [str(python), "-c", AGE_RAW_ROWS, str(stale), table, loaded_at], check=True, timeout=60
        )

    dbt = Dbt(duckdb_run.dbt.executable, tmp_path, {"WHOOP_DUCKDB_PATH": str(stale), "DBT_TARGET": "duckdb"})
    assert dbt("source", "freshness", expect_success=False).returncode != 0
    sources = json.loads((tmp_path / "target/sources.json").read_text())["results"]
    statuses = {s["unique_id"].split(".")[-1]: s["status"] for s in sources}
    assert statuses == {
        "cycles": "error",
        "profile": "warn",
        "sleeps": "pass",
        "recoveries": "pass",
        "workouts": "pass",
        "body_measurement": "pass",
    }
