"""sandbox → `meltano run whoop-duckdb` → raw, staging and marts in DuckDB hold exactly what was served, run
after run, with `tap-whoop serve` receiving the sandbox's webhooks beside it.

Six runs against one sandbox, each a fixture that builds on the previous one (so any test can run alone):
1. the first run loads the whole history (WHOOP sends a field the tap does not model on profile and body);
2. after the athlete's data changes (late scores, a past-dated workout, an edited sleep) the next run reflects
   every change with no duplicates; WHOOP has begun sending fields the tap does not model on the records of
   every collection made in the last days (top-level and nested): they land in each staging model's
   `unmodelled_fields`, and the run names each once per stream;
3. with nothing changed, a run asks each collection endpoint once (its lookback window) and changes nothing;
4. WHOOP stops sending a field the tap models and one it kept in `unmodelled_fields` (nothing breaks); after
   deletions whose webhooks WHOOP lost (a workout 3 days ago, a sleep 5 days ago: reconciliation must
   find them), a workout moved out of the window (deletes nothing), and delivered webhooks for changes beyond
   the lookback window (a sleep deleted 40 days ago, a workout edited 30 days ago, the edit delivered twice),
   plus forged, stale, oversized and malformed deliveries: each deleted record leaves staging and the marts on
   this incremental run, raw keeps its last version, and the models' data tests pass (the only run that runs
   them);
5. a run whose workout read is cut short by a fault: the tap fails and deletes nothing;
6. the run after: the deletion that waited is recorded, and a deleted workout WHOOP serves again is back.

Meltano runs as a subprocess from the project root, exactly as a user runs it, on a machine a day ahead of UTC
(tests/zones.py), with a private system directory (system database, generated config and state files), the
DuckDB file and the tap's token store in a temporary directory.
"""

from __future__ import annotations

import datetime as dt
import math
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
    DATA_TESTS_RAN,
    KEYS,
    PROJECT_ROOT,
    STAGING_KEYS,
    WITHOUT_TESTS,
    WITHOUT_UNIT_TESTS,
    SandboxReader,
    assert_warehouse_matches_sandbox,
    isolated_env,
    kept_unmodelled,
    load_stamps,
    outside_runs,
    private_sys_dir,
    run_meltano,
    same_value,
    sandbox_env,
    served_paths,
    strip_load_times,
)
from serve_support import ServeProcess, bad_deliveries
from tap_whoop.stores import open_event_log
from whoop_sandbox import Sandbox

pytestmark = pytest.mark.timeout(2400)

# Deep enough for a sleep deleted 40 days ago, beyond the lookback, that only a webhook tells.
HISTORY_DAYS = 50
# The workouts the changes pick by age (Sandbox workouts_at: one lies near each age, whatever the day).
WORKOUTS_AT = (2, 3, 4, 30)
# The tap's default, pinned here because the third run's request window is asserted against it.
LOOKBACK_DAYS = 14
PLUGIN_TAP = PROJECT_ROOT / ".meltano" / "extractors" / "tap-whoop" / "venv" / "bin" / "tap-whoop"
FAST_RETRIES = [0.2, 0.5, 1.0, 2.0]
# Fields WHOOP begins to send before the second run (sandbox.add_fields: dotted paths), on the records made
# within the days every collection's lookback window re-reads; and on profile and body before the first run.
ADDED_FIELDS = {
    "cycles": {"daily_step_total": 1234, "score.breathing_variability": 25.9},
    "sleeps": {"score.stage_summary.awake_count": 3},
    "recoveries": {"score.hrv_trend": "up"},
    "workouts": {"gps": {"km": 5.2}},
}
ADDED_SINCE_DAYS = LOOKBACK_DAYS - 3
SNAPSHOT_FIELDS = {"profile": {"preferred_name": "Sam"}, "body_measurement": {"body_fat_percentage": 18.5}}


@dataclass
class Pipeline:
    sandbox: Sandbox
    env: dict[str, str]
    db_path: Path
    service: ServeProcess
    reader: SandboxReader
    changes: dict = field(default_factory=dict)
    # (began, ended) of every run, naive UTC like the warehouse's timestamps.
    runs: list[tuple[dt.datetime, dt.datetime]] = field(default_factory=list)
    # query_all() after each run.
    warehouses: list[dict] = field(default_factory=list)
    # Meltano's output of each run.
    logs: list[str] = field(default_factory=list)

    def run(self, *, data_tests: bool = False) -> None:
        assert self.sandbox.wait_for_webhooks(60), "the sandbox's webhooks were not all delivered"
        self.sandbox.clear_log()
        began = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        leave_out = WITHOUT_UNIT_TESTS if data_tests else WITHOUT_TESTS
        self.logs.append(run_meltano(["run", "--no-install", "whoop-duckdb"], {**self.env, **leave_out}))
        self.runs.append((began, dt.datetime.now(dt.UTC).replace(tzinfo=None)))
        self.warehouses.append(self.query_all())

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

    def query(self, sql: str) -> list[dict]:
        with duckdb.connect(str(self.db_path), read_only=True) as con:
            cursor = con.execute(sql)
            columns = [d[0].lower() for d in cursor.description]
            return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    def query_all(self) -> dict:
        return {
            "deleted": {(r["stream"], r["id"]): r for r in self.query("select * from raw.deleted_records")},
            "daily": {
                r["cycle_id"]: r for r in self.query("select * from marts.fct_daily_health") if r["cycle_id"]
            },
            "cycles": {r["cycle_id"]: r for r in self.query("select * from marts.fct_cycles")},
            "workouts": {r["workout_id"]: r for r in self.query("select * from marts.fct_workouts")},
        }

    def staging_keys(self, stream: str) -> set[str]:
        key = STAGING_KEYS[stream]
        return {str(r[key]) for r in self.query(f"select {key} from staging.stg_whoop__{stream}")}

    def events(self) -> list:
        return open_event_log(self.env["TAP_WHOOP_TOKEN_STORE"], self.env["TAP_WHOOP_CLIENT_ID"]).read()


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("whoop-duckdb")
    sandbox = Sandbox(seed=11, days=HISTORY_DAYS, athletes=1, rate_limits=[], workouts_at=WORKOUTS_AT).start()
    try:
        start = (dt.datetime.now(dt.UTC) - dt.timedelta(days=HISTORY_DAYS + 5)).strftime("%Y-%m-%dT00:00:00Z")
        env = isolated_env(
            TZ=zones.AHEAD,
            MELTANO_SYS_DIR_ROOT=str(private_sys_dir(tmp / "meltano-sys")),
            WHOOP_DUCKDB_PATH=str(tmp / "whoop.duckdb"),
            TAP_WHOOP_LOOKBACK_DAYS=str(LOOKBACK_DAYS),
            **sandbox_env(sandbox, tmp, start_date=start),
        )
        # The service runs as the plugin Meltano installed, with the pipeline's settings (same token store).
        with ServeProcess([str(PLUGIN_TAP), "serve"], env, tmp / "serve.log") as service:
            sandbox.configure_webhooks(service.webhook_url, retry_delays=FAST_RETRIES, timeout=5.0)
            pipeline = Pipeline(sandbox, env, tmp / "whoop.duckdb", service, SandboxReader(sandbox))
            for resource, fields in SNAPSHOT_FIELDS.items():
                sandbox.add_fields(resource, fields)
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
    for stream, fields in ADDED_FIELDS.items():
        sandbox.add_fields(stream, fields, since_days_ago=ADDED_SINCE_DAYS)
    pipeline.run()
    return pipeline


@pytest.fixture(scope="module")
def unchanged_run(after_changes: Pipeline) -> tuple[Pipeline, dict, dict]:
    before = after_changes.warehouse()
    after_changes.run()
    return after_changes, before, after_changes.warehouse()


def test_first_run_loads_exactly_what_the_sandbox_serves(pipeline: Pipeline) -> None:
    assert_warehouse_matches_sandbox(pipeline.reader.everything(), pipeline.warehouse())
    served = pipeline.reader.everything()
    assert all(served[stream] for stream in COLLECTIONS), "the sandbox served an empty collection"


def test_load_times_are_utc_whatever_the_machines_zone(pipeline: Pipeline) -> None:
    """Every time the pipeline wrote (the tap's extraction, the loader's batch, dbt's loaded_at) is UTC: it
    falls within a run's UTC window though the pipeline's processes run at UTC+14 (tests/zones.py)."""
    stamped = load_stamps(pipeline.warehouse())
    outside = outside_runs(stamped, pipeline.runs)
    assert not outside, f"not within a run's UTC window {pipeline.runs}: {outside[:5]}"


def test_second_run_reflects_late_changes_without_duplicates(after_changes: Pipeline) -> None:
    changes = after_changes.changes
    assert changes["rescored"], "the sandbox had no pending scores to rescore: the check would be vacuous"
    assert_warehouse_matches_sandbox(after_changes.reader.everything(), after_changes.warehouse())

    tables = after_changes.warehouse()
    workout_id = changes["past_workout"][0]["id"]
    assert [r["workout_id"] for r in tables["marts"]["fct_workouts"] if r["workout_id"] == workout_id]
    sleep = changes["edited_sleep"][0]
    (raw_sleep,) = [r for r in tables["raw"]["sleeps"] if r["id"] == sleep["id"]]
    assert same_value(sleep["end"], raw_sleep["end"])
    assert same_value(sleep["updated_at"], raw_sleep["updated_at"])


def test_sleep_signals_land_whole_one_row_per_scored_sleep(after_changes: Pipeline) -> None:
    rows = after_changes.query(
        "select sleep_id, sleep_updated_at, sample_count, json_array_length(stream) as stored"
        " from raw.sleep_signals"
    )
    by_sleep = {r["sleep_id"]: r for r in rows}
    scored = {
        r["id"]: r for r in after_changes.reader.everything()["sleeps"] if r["score_state"] != "PENDING_SCORE"
    }
    assert len(rows) == len(by_sleep) == len(scored) > 0
    assert set(by_sleep) == set(scored)
    for sleep_id, row in by_sleep.items():
        assert row["sample_count"] == row["stored"] > 0, sleep_id
        assert same_value(scored[sleep_id]["updated_at"], row["sleep_updated_at"]), sleep_id
    edited = after_changes.changes["edited_sleep"][0]
    assert same_value(edited["updated_at"], by_sleep[edited["id"]]["sleep_updated_at"])


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


def warning_for(stream: str, path: str) -> str:
    return (
        f"{stream}: WHOOP sends `{path}`, which this tap does not model; its values are kept in "
        f"unmodelled_fields (stg_whoop__{stream}.unmodelled_fields)"
    )


def test_fields_whoop_adds_land_in_unmodelled_fields_and_are_named_once(after_changes: Pipeline) -> None:
    """The issue's test: WHOOP added fields between two runs. Every staging model of a WHOOP stream holds
    them in `unmodelled_fields` (JSON), nested as served, for the records the run re-read; the run's log
    names each once per stream, saying where the values are, and the SDK drops none."""
    p = after_changes
    log = p.logs[1]
    assert "not found in catalog schema" not in log
    for stream, fields in ADDED_FIELDS.items():
        for path in fields:
            assert log.count(warning_for(stream, path)) == 1, f"{stream}: {path} not named once"
    for stream, fields in SNAPSHOT_FIELDS.items():  # served since the first run, read on it alone
        assert p.logs[0].count(warning_for(stream, next(iter(fields)))) == 1, stream
        assert not [line for line in p.logs[1].splitlines() if f"{stream}: WHOOP sends" in line]

    served = p.reader.everything()
    types = {
        r["table_name"]: r["data_type"]
        for r in p.query(
            "select table_name, data_type from information_schema.columns"
            " where table_schema = 'staging' and column_name = 'unmodelled_fields'"
        )
    }
    for stream, fields in {**ADDED_FIELDS, **SNAPSHOT_FIELDS}.items():
        assert types.get(f"stg_whoop__{stream}") == "JSON", stream
        key = STAGING_KEYS.get(stream, "user_id")
        api_key = KEYS.get(stream, ("user_id",))[0]
        kept = {
            str(r[key]): kept_unmodelled(r)
            for r in p.query(f"select {key}, unmodelled_fields from staging.stg_whoop__{stream}")
        }
        expected = {str(r[api_key]): served_paths(r, fields) for r in served[stream]}
        assert kept == expected, stream
        carrying = [k for k, fields_kept in expected.items() if fields_kept]
        assert carrying, f"{stream}: no record carries the added fields"
        if stream in ADDED_FIELDS:
            assert len(carrying) < len(expected), f"{stream}: the older records should lack them"


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


@pytest.fixture(scope="module")
def after_deletions(unchanged_run) -> Pipeline:
    pipeline = unchanged_run[0]
    sb = pipeline.sandbox
    c = pipeline.changes
    c["before"] = pipeline.warehouses[-1]
    # WHOOP stops sending a field the tap models and one it kept unmodelled: re-read rows simply lack them.
    sb.stop_field("cycles", "score.kilojoule")
    sb.stop_field("cycles", "daily_step_total")
    # WHOOP lost these webhooks: reconciliation's job.
    sb.inject_webhook_fault("drop", count=1, type_prefix="workout.")
    c["workout"] = sb.record_near("workout", athlete=0, days_ago=3)
    sb.delete_record("workout", c["workout"]["id"])
    sb.inject_webhook_fault("drop", count=2, type_prefix="")
    c["sleep"] = sb.record_near("sleep", athlete=0, days_ago=5)
    sb.delete_record("sleep", c["sleep"]["id"])
    sb.inject_webhook_fault("drop", count=1, type_prefix="workout.")
    moving = sb.record_near("workout", athlete=0, days_ago=2)
    c["moved"] = sb.move_record("workout", moving["id"], days_ago=40)
    # Beyond the lookback window: only the webhooks tell.
    c["old_sleep"] = sb.record_near("sleep", athlete=0, days_ago=40)
    sb.delete_record("sleep", c["old_sleep"]["id"])
    sb.inject_webhook_fault("duplicate", count=1, type_prefix="workout.")
    c["edited"] = sb.edit_workout(athlete=0, days_ago=30)
    assert sb.wait_for_webhooks(60)
    events_before = len(pipeline.events())
    c["bad"] = bad_deliveries(
        pipeline.service, pipeline.env["TAP_WHOOP_CLIENT_SECRET"], sb.athletes[0].user_id, c["workout"]["id"]
    )
    c["stored_events"] = len(pipeline.events()) - events_before
    pipeline.run(data_tests=True)
    assert DATA_TESTS_RAN.search(pipeline.logs[-1]), "the build ran no data tests"
    c["fields_stopped_run"] = len(pipeline.runs) - 1
    return pipeline


@pytest.fixture(scope="module")
def after_cut_short(after_deletions: Pipeline) -> Pipeline:
    sb = after_deletions.sandbox
    c = after_deletions.changes
    sb.inject_webhook_fault("drop", count=1, type_prefix="workout.")
    c["late"] = sb.record_near("workout", athlete=0, days_ago=4)
    sb.delete_record("workout", c["late"]["id"])
    c["restored"] = sb.restore_record("workout", c["workout"]["id"])  # served again, newer updated_at
    # The workout read never gets past its first page (a next_token that loops): the tap stops, no retry.
    sb.inject_fault("next_token_loop", path_prefix="/developer/v2/activity/workout", count=1)
    c["deleted_before_cut"] = dict(after_deletions.warehouses[-1]["deleted"])
    with pytest.raises(AssertionError, match="exited"):
        after_deletions.run()
    c["deleted_after_cut"] = after_deletions.query_all()["deleted"]
    c["staging_after_cut"] = after_deletions.staging_keys("workouts")
    sb.clear_faults()
    after_deletions.run()
    return after_deletions


def test_reconciliation_webhooks_and_raw_after_deletions(after_deletions: Pipeline) -> None:
    p, c = after_deletions, after_deletions.changes
    deleted = p.warehouses[-1]["deleted"]
    sleep, old_sleep = c["sleep"]["id"], c["old_sleep"]["id"]
    assert set(deleted) == {
        ("workouts", c["workout"]["id"]),
        ("sleeps", sleep),
        ("recoveries", sleep),
        ("sleeps", old_sleep),
        ("recoveries", old_sleep),
    }
    for key in (("workouts", c["workout"]["id"]), ("sleeps", sleep), ("recoveries", sleep)):
        assert (deleted[key]["detected_by"], deleted[key]["trace_id"]) == ("reconciliation", None)
    for key in (("sleeps", old_sleep), ("recoveries", old_sleep)):
        assert deleted[key]["detected_by"] == "webhook"
        assert deleted[key]["trace_id"]
    assert {r["user_id"] for r in deleted.values()} == {p.sandbox.athletes[0].user_id}
    # Raw keeps the last version WHOOP served: auditable, nothing overwritten with nulls.
    (raw_workout,) = p.query(f"select * from raw.workouts where id = '{c['workout']['id']}'")
    assert raw_workout["score__strain"] == pytest.approx(c["workout"]["score"]["strain"])
    assert p.query(f"select id from raw.sleeps where id in ('{sleep}', '{old_sleep}')")


def test_deleted_records_leave_staging_and_what_moved_or_changed_lands(after_deletions: Pipeline) -> None:
    p, c = after_deletions, after_deletions.changes
    served = p.reader.everything()
    for stream, key in (("cycles", "id"), ("sleeps", "id"), ("recoveries", "cycle_id"), ("workouts", "id")):
        assert p.staging_keys(stream) == {str(r[key]) for r in served[stream]}, f"stg_whoop__{stream}"
    (moved,) = p.query(
        f"select start_at from staging.stg_whoop__workouts where workout_id = '{c['moved']['id']}'"
    )
    assert moved["start_at"] < dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=LOOKBACK_DAYS)
    (edited,) = p.query(
        f"select sport_name from staging.stg_whoop__workouts where workout_id = '{c['edited']['id']}'"
    )
    assert edited["sport_name"] == c["edited"]["sport_name"]


def test_deleted_records_leave_every_mart_on_the_incremental_run(after_deletions: Pipeline) -> None:
    p, c = after_deletions, after_deletions.changes
    before, after = c["before"], p.warehouses[-1]
    assert c["workout"]["id"] not in after["workouts"]
    assert c["moved"]["id"] in after["workouts"]
    assert after["workouts"][c["edited"]["id"]]["sport_name"] == c["edited"]["sport_name"]
    sleeps = {r["sleep_id"] for r in p.query("select sleep_id from marts.fct_sleeps")}
    assert not {c["sleep"]["id"], c["old_sleep"]["id"]} & sleeps
    # The cycles the deleted and the moved workout left: theirs fewer (workouts, strain, minutes), in
    # fct_cycles and on their days. Both may share one cycle: which workouts lie at an age changes by the day.
    gone = [before["workouts"][c["workout"]["id"]], before["workouts"][c["moved"]["id"]]]
    for cycle in {w["cycle_id"] for w in gone}:
        left = [w for w in gone if w["cycle_id"] == cycle]
        for table in ("cycles", "daily"):
            was, now = before[table][cycle], after[table][cycle]
            assert now["workout_count"] == was["workout_count"] - len(left), table
            strain = was["workout_strain"] - sum(w["strain"] for w in left)
            assert math.isclose(now["workout_strain"], strain, abs_tol=1e-9), table
            minutes = was["workout_minutes"] - sum(w["duration_minutes"] for w in left)
            assert math.isclose(now["workout_minutes"], minutes, abs_tol=1e-9), table
    # The deleted sleeps' cycles: their sleep figures are no longer the deleted sleep's.
    for sleep in (c["sleep"], c["old_sleep"]):
        was, now = before["cycles"][sleep["cycle_id"]], after["cycles"][sleep["cycle_id"]]
        assert was["main_sleep_id"] == sleep["id"]
        assert now["main_sleep_id"] != sleep["id"]
        assert now["hours_asleep"] != was["hours_asleep"]
    assert not {c["sleep"]["id"], c["old_sleep"]["id"]} & {
        r["main_sleep_id"] for r in after["daily"].values()
    }


def test_fields_whoop_stops_sending_become_null_and_break_nothing(after_deletions: Pipeline) -> None:
    p = after_deletions
    began, _ = p.runs[p.changes["fields_stopped_run"]]
    rows = p.query(
        "select cycle_id, kilojoule, strain, unmodelled_fields, loaded_at from staging.stg_whoop__cycles"
    )
    reread = [r for r in rows if r["loaded_at"] >= began]
    assert [r for r in reread if r["strain"] is not None], "no scored cycle was re-read: the check is vacuous"
    served = {str(r["id"]): r for r in p.reader.collection("cycles")}
    for row in reread:
        assert row["kilojoule"] is None, row["cycle_id"]
        kept = kept_unmodelled(row)
        assert "daily_step_total" not in kept, row["cycle_id"]
        assert kept == served_paths(served[str(row["cycle_id"])], ADDED_FIELDS["cycles"]), row["cycle_id"]
    assert [r for r in reread if kept_unmodelled(r)], "no re-read cycle still carries an added field"
    # The marts take the gap in their stride: every cycle is there, the re-read ones without energy.
    facts = {r["cycle_id"]: r["kilojoule"] for r in p.query("select * from marts.fct_cycles")}
    assert facts.keys() == {r["cycle_id"] for r in rows}
    assert [facts[r["cycle_id"]] for r in reread] == [None] * len(reread)


def test_webhook_service_stored_each_event_once_and_nothing_bad(after_deletions: Pipeline) -> None:
    c = after_deletions.changes
    assert c["bad"] == {"forged": 401, "stale": 401, "oversized": 413, "malformed": 400}
    assert c["stored_events"] == 0
    events = [s.event for s in after_deletions.events()]
    edits = [e for e in events if e.id == c["edited"]["id"]]
    assert len(edits) == 1, "the duplicated delivery is stored once"
    assert {e.type for e in events if e.id == c["old_sleep"]["id"]} == {"sleep.deleted", "recovery.deleted"}


def test_a_read_cut_short_deletes_nothing_then_the_next_run_catches_up(after_cut_short: Pipeline) -> None:
    p, c = after_cut_short, after_cut_short.changes
    assert c["deleted_after_cut"] == c["deleted_before_cut"]
    assert c["late"]["id"] in c["staging_after_cut"]
    deleted = p.warehouses[-1]["deleted"]
    assert ("workouts", c["late"]["id"]) in deleted
    assert c["late"]["id"] not in p.staging_keys("workouts")
    # Served again after its deletion (a newer updated_at): back in staging and the marts.
    assert c["workout"]["id"] in p.staging_keys("workouts")
    assert p.query(f"select workout_id from marts.fct_workouts where workout_id = '{c['workout']['id']}'")
    served = p.reader.everything()
    assert p.staging_keys("workouts") == {r["id"] for r in served["workouts"]}
