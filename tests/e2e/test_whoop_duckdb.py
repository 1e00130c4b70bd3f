"""sandbox → `meltano run whoop-duckdb` → raw, staging and marts in DuckDB hold exactly what was served.

Three runs against one sandbox, each a fixture that builds on the previous one (so any test can run alone):
1. the first run loads the whole history;
2. after the athlete's data changes (late scores, a past-dated workout, an edited sleep) the next run reflects
   every change with no duplicates;
3. with nothing changed, a run asks each collection endpoint once (its lookback window) and changes nothing.

Meltano runs as a subprocess from the project root, exactly as a user runs it, with a private system directory
(system database, generated config and state files), the DuckDB file and the tap's token store in a temporary
directory.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest
import zones
from comparing import approx_floats
from e2e_support import (
    COLLECTIONS,
    KEYS,
    PROJECT_ROOT,
    STAGING_KEYS,
    SandboxReader,
    diff_records,
    isolated_env,
    private_sys_dir,
    run_meltano,
    same_value,
    sandbox_env,
)
from whoop_sandbox import Sandbox

pytestmark = pytest.mark.timeout(1500)

HISTORY_DAYS = 40
# The tap's default, pinned here because the third run's request window is asserted against it.
LOOKBACK_DAYS = 14
RAW_KEYS = {**KEYS, "profile": ("user_id",), "body_measurement": ("user_id",)}
STAGING_MODEL_KEYS = {**STAGING_KEYS, "profile": "user_id", "body_measurement": "user_id"}
# The models cast scores with dbt.type_float(), which is single precision on DuckDB: compare them to float32
# precision (raw is compared exactly).
MODEL_REL_TOL = 1e-6


@dataclass
class Pipeline:
    sandbox: Sandbox
    env: dict[str, str]
    db_path: Path
    reader: SandboxReader
    changes: dict[str, list[dict]] = field(default_factory=dict)
    # (began, ended) of every run, naive UTC like the warehouse's timestamps.
    runs: list[tuple[dt.datetime, dt.datetime]] = field(default_factory=list)

    def run(self) -> None:
        self.sandbox.clear_log()
        began = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        run_meltano(["run", "--no-install", "whoop-duckdb"], self.env)
        self.runs.append((began, dt.datetime.now(dt.UTC).replace(tzinfo=None)))

    def warehouse(self) -> dict[str, dict[str, list[dict]]]:
        """Every table by schema, rows as dicts (column names lower-cased: DuckDB ignores identifier case)."""
        tables: dict[str, dict[str, list[dict]]] = {}
        with duckdb.connect(str(self.db_path), read_only=True) as con:
            names = con.execute(
                "select table_schema, table_name from information_schema.tables"
                " where table_schema in ('raw', 'staging', 'marts')"
            ).fetchall()
            for schema, table in names:
                cursor = con.execute(f'select * from "{schema}"."{table}"')
                columns = [d[0].lower() for d in cursor.description]
                tables.setdefault(schema, {})[table] = [
                    dict(zip(columns, r, strict=True)) for r in cursor.fetchall()
                ]
        return tables


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Pipeline:
    tmp = tmp_path_factory.mktemp("whoop-duckdb")
    # Rate limits off: pacing has its own tests in tap-whoop; here only the data path matters.
    sandbox = Sandbox(seed=11, days=HISTORY_DAYS, athletes=1, rate_limits=[]).start()
    try:
        start = (dt.datetime.now(dt.UTC) - dt.timedelta(days=HISTORY_DAYS + 5)).strftime("%Y-%m-%dT00:00:00Z")
        env = isolated_env(
            TZ=zones.AHEAD,
            MELTANO_SYS_DIR_ROOT=str(private_sys_dir(tmp / "meltano-sys")),
            WHOOP_DUCKDB_PATH=str(tmp / "whoop.duckdb"),
            TAP_WHOOP_LOOKBACK_DAYS=str(LOOKBACK_DAYS),
            **sandbox_env(sandbox, tmp, start_date=start),
        )
        pipeline = Pipeline(sandbox, env, tmp / "whoop.duckdb", SandboxReader(sandbox))
        pipeline.run()
        yield pipeline
    finally:
        sandbox.stop()


@pytest.fixture(scope="module")
def after_changes(pipeline: Pipeline) -> Pipeline:
    sandbox = pipeline.sandbox
    pipeline.changes = {
        "rescored": sandbox.rescore_pending(),
        "past_workout": [sandbox.add_past_workout(athlete=0, days_ago=10)],
        "edited_sleep": [sandbox.edit_sleep(athlete=0, days_ago=5)],
    }
    pipeline.run()
    return pipeline


@pytest.fixture(scope="module")
def unchanged_run(after_changes: Pipeline) -> tuple[Pipeline, dict, dict]:
    before = after_changes.warehouse()
    after_changes.run()
    return after_changes, before, after_changes.warehouse()


def assert_warehouse_matches_sandbox(pipeline: Pipeline) -> None:
    served = pipeline.reader.everything()
    tables = pipeline.warehouse()
    raw, staging, marts = tables.get("raw", {}), tables.get("staging", {}), tables.get("marts", {})
    problems: list[str] = []

    # raw: every served field, column by column, upserted on the stream's key.
    for stream, keys in RAW_KEYS.items():
        if stream not in raw:
            problems.append(f"raw.{stream} is missing")
            continue
        problems += diff_records(f"raw.{stream}", served[stream], raw[stream], keys)

    # staging: one row per key, the newest version of each record.
    for stream, key in STAGING_MODEL_KEYS.items():
        rows = staging.get(f"stg_whoop__{stream}")
        if rows is None:
            problems.append(f"staging.stg_whoop__{stream} is missing")
            continue
        api_key = RAW_KEYS[stream][0]
        expected = {str(r[api_key]): r for r in served[stream]}
        got = [str(r[key]) for r in rows]
        if sorted(got) != sorted(expected):
            problems.append(
                f"staging.stg_whoop__{stream}: keys differ from the API ({len(got)} vs {len(expected)})"
            )
        for row in rows:
            record = expected.get(str(row[key]))
            if record and "updated_at" in record and not same_value(record["updated_at"], row["updated_at"]):
                problems.append(f"staging.stg_whoop__{stream} {row[key]}: stale version {row['updated_at']}")

    # marts: one fact per cycle / sleep / workout, carrying the served scores.
    cycles = {r["id"]: r for r in served["cycles"]}
    recoveries = {r["cycle_id"]: r for r in served["recoveries"]}
    per_cycle = {r["cycle_id"]: r for r in marts.get("fct_cycles", [])}
    if sorted(per_cycle) != sorted(cycles) or len(per_cycle) != len(marts.get("fct_cycles", [])):
        problems.append(f"marts.fct_cycles: {len(per_cycle)} cycles, the API served {len(cycles)}")
    for cycle_id, row in per_cycle.items():
        cycle = cycles.get(cycle_id, {})
        if not same_value((cycle.get("score") or {}).get("strain"), row["strain"], rel_tol=MODEL_REL_TOL):
            problems.append(f"fct_cycles {cycle_id}: strain {row['strain']}, API {cycle.get('score')}")
        recovery_score = (recoveries.get(cycle_id, {}).get("score") or {}).get("recovery_score")
        if not same_value(recovery_score, row["recovery_score"], rel_tol=MODEL_REL_TOL):
            problems.append(f"fct_cycles {cycle_id}: recovery {row['recovery_score']}, API {recovery_score}")
    # The daily facts: one row per day from the first to the last, each cycle counted on one of them.
    daily = marts.get("fct_daily_health", [])
    days = {r["date_day"] for r in daily}
    if daily and (len(days) != len(daily) or len(days) != (max(days) - min(days)).days + 1):
        problems.append(f"marts.fct_daily_health: {len(daily)} rows for {len(days)} distinct days")
    if sum(r["cycle_count"] for r in daily) != len(cycles):
        problems.append(f"marts.fct_daily_health counts {sum(r['cycle_count'] for r in daily)} cycles")
    for model, stream, key in (
        ("fct_sleeps", "sleeps", "sleep_id"),
        ("fct_workouts", "workouts", "workout_id"),
    ):
        rows = {str(r[key]): r for r in marts.get(model, [])}
        expected = {str(r["id"]): r for r in served[stream]}
        if sorted(rows) != sorted(expected) or len(rows) != len(marts.get(model, [])):
            problems.append(
                f"marts.{model}: {len(marts.get(model, []))} rows, the API served {len(expected)}"
            )
        for record_id, row in rows.items():
            if record_id in expected and row["score_state"] != expected[record_id]["score_state"]:
                problems.append(f"{model} {record_id}: score_state {row['score_state']}, API differs")
    users = [r["user_id"] for r in marts.get("dim_user", [])]
    if users != [served["profile"][0]["user_id"]]:
        problems.append(
            f"marts.dim_user holds {users}, the API's athlete is {served['profile'][0]['user_id']}"
        )

    assert not problems, "\n".join(problems[:40])


def test_first_run_loads_exactly_what_the_sandbox_serves(pipeline: Pipeline) -> None:
    assert_warehouse_matches_sandbox(pipeline)
    served = pipeline.reader.everything()
    assert all(served[stream] for stream in COLLECTIONS), "the sandbox served an empty collection"


def test_load_times_are_utc_whatever_the_machines_zone(pipeline: Pipeline) -> None:
    """Every time the pipeline wrote (the tap's extraction, the loader's batch, dbt's loaded_at) is UTC: it
    falls within a run's UTC window though the pipeline's processes run at UTC+14 (tests/zones.py)."""
    tables = pipeline.warehouse()
    stamped = [
        (f"raw.{table}.{column}", row[column])
        for table, rows in tables["raw"].items()
        for row in rows
        for column in ("_sdc_extracted_at", "_sdc_batched_at")
    ] + [
        (f"{schema}.{table}.loaded_at", row["loaded_at"])
        for schema in ("staging", "marts")
        for table, rows in tables[schema].items()
        for row in rows
        if "loaded_at" in row
    ]
    assert len({name.rsplit(".", 1)[0] for name, _ in stamped}) > 10, "too few stamped tables to tell"
    slack = dt.timedelta(seconds=5)
    outside = [
        (name, value)
        for name, value in stamped
        if not any(began - slack <= value <= ended + slack for began, ended in pipeline.runs)
    ]
    assert not outside, f"not within a run's UTC window {pipeline.runs}: {outside[:5]}"


def test_second_run_reflects_late_changes_without_duplicates(after_changes: Pipeline) -> None:
    changes = after_changes.changes
    assert changes["rescored"], "the sandbox had no pending scores to rescore: the check would be vacuous"
    assert_warehouse_matches_sandbox(after_changes)

    tables = after_changes.warehouse()
    workout_id = changes["past_workout"][0]["id"]
    assert [r["workout_id"] for r in tables["marts"]["fct_workouts"] if r["workout_id"] == workout_id]
    sleep = changes["edited_sleep"][0]
    (raw_sleep,) = [r for r in tables["raw"]["sleeps"] if r["id"] == sleep["id"]]
    assert same_value(sleep["end"], raw_sleep["end"])
    assert same_value(sleep["updated_at"], raw_sleep["updated_at"])


def test_third_run_without_changes_reads_one_page_per_collection_and_changes_nothing(unchanged_run) -> None:
    pipeline, before, after = unchanged_run
    tap_requests = [
        e
        for e in pipeline.sandbox.request_log
        if e["client_id"] == pipeline.env["TAP_WHOOP_CLIENT_ID"] and e["path"].startswith("/developer/v2/")
    ]
    for stream, endpoint in COLLECTIONS.items():
        calls = [e for e in tap_requests if e["path"] == "/developer" + endpoint]
        assert len(calls) == 1, f"{stream}: {len(calls)} requests to {endpoint}, expected one page"
        start = dt.datetime.fromisoformat(calls[0]["params"]["start"].replace("Z", "+00:00"))
        # Bookmark minus the lookback: no further back than the lookback before the newest record (now-ish).
        oldest_allowed = dt.datetime.now(dt.UTC) - dt.timedelta(days=LOOKBACK_DAYS + 2)
        assert start >= oldest_allowed, (
            f"{stream}: read from {start}, beyond the {LOOKBACK_DAYS}-day lookback"
        )

    # Nothing changed: identical tables in every layer, apart from the columns saying when rows were loaded.
    for schema in ("raw", "staging", "marts"):
        assert after[schema].keys() == before[schema].keys()
        for table, rows in before[schema].items():
            assert strip_load_times(after[schema][table]) == approx_floats(strip_load_times(rows)), (
                f"{schema}.{table} changed"
            )


def strip_load_times(rows: list[dict]) -> list[dict]:
    """Rows without the columns that record when a row was loaded, sorted for comparison."""

    def volatile(column: str) -> bool:
        return column.startswith(("_sdc_", "dbt_")) or column.endswith(
            ("loaded_at", "extracted_at", "synced_at")
        )

    stripped = [{k: v for k, v in r.items() if not volatile(k)} for r in rows]
    return sorted(stripped, key=repr)


def test_demo_summary_reports_what_landed(pipeline: Pipeline, capsys) -> None:
    """`make demo` ends with scripts/show_warehouse.py: it must count every table right."""
    sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
    import show_warehouse

    assert show_warehouse.main([str(pipeline.db_path)]) == 0
    report = capsys.readouterr().out
    counts = {
        (schema, table): len(rows)
        for schema, tables in pipeline.warehouse().items()
        for table, rows in tables.items()
    }
    for (schema, table), rows in counts.items():
        assert re.search(rf"^\s+{schema}\s+{table}\s+\w+\s+{rows}$", report, re.MULTILINE), (schema, table)
    assert "marts.fct_daily_health" in report
