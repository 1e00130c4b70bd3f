"""sandbox → `meltano run whoop-postgres` → raw, staging and marts in a real PostgreSQL, with Meltano's state,
the tap's tokens and its webhook event log in the same database.

One server (the whoop_sandbox plugin's postgres_server: initdb as an unprivileged user, a loopback port, its
clock zone UTC+14), one sandbox, a few runs, each a fixture building on the previous one:
1. the backfill: raw, staging and marts exactly what was served; state, tokens and events in Postgres;
2. after late changes (rescores, a past-dated workout, an edited sleep) and deletions (a workout whose webhook
   WHOOP lost: reconciliation; a sleep 40 days ago that only a webhook tells, an edit beyond the lookback
   delivered twice), the incremental run reflects every change and each deleted record leaves staging and
   the marts; fields WHOOP began to send on recent recoveries are text in raw and JSONB in staging;
3. two runs at once: while the first holds the pipeline, the second is refused by the job record in Postgres,
   and the first completes;
4. a full refresh rebuilds the marts the incremental runs built; and `meltano run whoop-duckdb` of the same
   WHOOP data (its own app) lands the same marts in DuckDB.

Meltano runs as a subprocess from the project root in the README's Postgres set-up (environment `postgres`,
libpq's variables, MELTANO_DATABASE_URI=postgresql+psycopg://) on a machine a day behind UTC (tests/zones.py).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest
import zones
from comparing import approx_floats
from e2e_support import (
    COLLECTIONS,
    MELTANO,
    PIPELINE_TIMEOUT,
    PROJECT_ROOT,
    STAGING_KEYS,
    WITHOUT_UNIT_TESTS,
    SandboxReader,
    assert_warehouse_matches_sandbox,
    isolated_env,
    kept_unmodelled,
    load_stamps,
    outside_runs,
    private_sys_dir,
    run_meltano,
    sandbox_env,
    served_paths,
    strip_load_times,
)
from serve_support import ServeProcess
from whoop_sandbox import Sandbox

pytestmark = pytest.mark.timeout(1800)

# Deep enough for a sleep deleted 40 days ago, beyond the lookback, that only a webhook tells.
HISTORY_DAYS = 45
LOOKBACK_DAYS = 14
DATABASE = "whoop"
JOB = "whoop-postgres"
STATE_ID = "postgres:tap-whoop-to-target-postgres"
PLUGIN_TAP = PROJECT_ROOT / ".meltano" / "extractors" / "tap-whoop" / "venv" / "bin" / "tap-whoop"
FAST_RETRIES = [0.2, 0.5, 1.0, 2.0]
RAW_TABLES = ("cycles", "sleeps", "recoveries", "workouts", "profile", "body_measurement")
# Fields WHOOP begins to send on recent recoveries before the second run (sandbox.add_fields: dotted paths).
ADDED_FIELDS = {"score.hrv_trend": "up", "daily_step_total": 8000}


def plain(value):
    """numeric (a sum of bigints) reads as Decimal; DuckDB's and the API's numbers are int or float."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


@dataclass
class Pipeline:
    sandbox: Sandbox
    env: dict[str, str]
    server: object
    reader: SandboxReader
    tmp: Path
    changes: dict = field(default_factory=dict)
    runs: list[tuple[dt.datetime, dt.datetime]] = field(default_factory=list)

    def run(self) -> None:
        assert self.sandbox.wait_for_webhooks(60), "the sandbox's webhooks were not all delivered"
        self.sandbox.clear_log()
        began = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        run_meltano(["run", "--no-install", JOB], self.env)
        self.runs.append((began, dt.datetime.now(dt.UTC).replace(tzinfo=None)))

    def query(self, sql: str) -> list[dict]:
        with self.server.connect(DATABASE) as conn, conn.cursor() as cursor:
            cursor.execute(sql)
            columns = [d.name.lower() for d in cursor.description]
            return [{c: plain(v) for c, v in zip(columns, row, strict=True)} for row in cursor.fetchall()]

    def warehouse(self, schemas=("raw", "staging", "marts")) -> dict[str, dict[str, list[dict]]]:
        names = self.query(
            "select table_schema, table_name from information_schema.tables"
            f" where table_schema in ({', '.join(repr(s) for s in schemas)})"
        )
        tables: dict[str, dict[str, list[dict]]] = {}
        for name in names:
            rows = self.query(f'select * from "{name["table_schema"]}"."{name["table_name"]}"')
            tables.setdefault(name["table_schema"], {})[name["table_name"]] = rows
        return tables

    def live_warehouse(self) -> dict[str, dict[str, list[dict]]]:
        """The warehouse without the raw rows of records deleted at WHOOP, which raw keeps as last served."""
        deleted = {(r["stream"], r["id"]) for r in self.query("select stream, id from raw.deleted_records")}
        tables = self.warehouse()
        for stream, key in (
            ("cycles", "id"),
            ("sleeps", "id"),
            ("workouts", "id"),
            ("recoveries", "sleep_id"),
        ):
            tables["raw"][stream] = [r for r in tables["raw"][stream] if (stream, str(r[key])) not in deleted]
        return tables

    def ids(self, relation: str, column: str) -> set[str]:
        return {str(r[column]) for r in self.query(f"select {column} from {relation}")}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, postgres_server):
    tmp = tmp_path_factory.mktemp("whoop-postgres")
    postgres_server.create_database(DATABASE)
    libpq = postgres_server.libpq_env(DATABASE)
    sandbox = Sandbox(seed=23, days=HISTORY_DAYS, athletes=1, rate_limits=[], workouts_at=(3, 30)).start()
    try:
        start = (dt.datetime.now(dt.UTC) - dt.timedelta(days=HISTORY_DAYS + 5)).strftime("%Y-%m-%dT00:00:00Z")
        whoop = sandbox_env(sandbox, tmp, start_date=start)
        del whoop["TAP_WHOOP_TOKEN_STORE"]  # the postgres environment keeps the tokens in the server
        env = isolated_env(
            TZ=zones.BEHIND,
            MELTANO_ENVIRONMENT="postgres",
            MELTANO_SYS_DIR_ROOT=str(private_sys_dir(tmp / "meltano-sys")),
            # The README's set-up: every part from libpq's variables.
            MELTANO_DATABASE_URI="postgresql+psycopg://",
            TAP_WHOOP_LOOKBACK_DAYS=str(LOOKBACK_DAYS),
            **libpq,
            **whoop,
        )
        # The service as the plugin Meltano installed, with the environment's token store (so its event log).
        serve_env = {**env, "TAP_WHOOP_TOKEN_STORE": "postgresql://"}
        with ServeProcess([str(PLUGIN_TAP), "serve"], serve_env, tmp / "serve.log") as service:
            sandbox.configure_webhooks(service.webhook_url, retry_delays=FAST_RETRIES, timeout=5.0)
            pipeline = Pipeline(sandbox, env, postgres_server, SandboxReader(sandbox), tmp)
            pipeline.run()  # the only build whose unit tests run on PostgreSQL
            pipeline.env.update(WITHOUT_UNIT_TESTS)
            yield pipeline
    finally:
        sandbox.stop()


@pytest.fixture(scope="module")
def after_changes(pipeline: Pipeline) -> Pipeline:
    sb, c = pipeline.sandbox, pipeline.changes
    c["before"] = {
        "workouts": {r["workout_id"]: r for r in pipeline.query("select * from marts.fct_workouts")},
        "cycles": {r["cycle_id"]: r for r in pipeline.query("select * from marts.fct_cycles")},
    }
    c["rescored"] = sb.rescore_pending()
    c["past_workout"] = sb.add_past_workout(athlete=0, days_ago=10)
    c["edited_sleep"] = sb.edit_sleep(athlete=0, days_ago=5)
    # WHOOP lost this webhook: reconciliation's job.
    sb.inject_webhook_fault("drop", count=1, type_prefix="workout.")
    c["workout"] = sb.record_near("workout", athlete=0, days_ago=3)
    sb.delete_record("workout", c["workout"]["id"])
    # Beyond the lookback window: only the webhooks tell.
    c["old_sleep"] = sb.record_near("sleep", athlete=0, days_ago=40)
    sb.delete_record("sleep", c["old_sleep"]["id"])
    sb.inject_webhook_fault("duplicate", count=1, type_prefix="workout.")
    c["edited"] = sb.edit_workout(athlete=0, days_ago=30)
    sb.add_fields("recoveries", ADDED_FIELDS, since_days_ago=LOOKBACK_DAYS - 3)
    pipeline.run()  # the edited sleep's new signal stream among it
    return pipeline


@pytest.fixture(scope="module")
def two_runs_at_once(after_changes: Pipeline) -> tuple[Pipeline, subprocess.CompletedProcess, int]:
    """The first run held inside its load (the test locks the raw tables), the second started meanwhile."""
    p = after_changes
    p.changes["late_workout"] = p.sandbox.add_past_workout(athlete=0, days_ago=2)
    assert p.sandbox.wait_for_webhooks(60)
    with p.server.connect(DATABASE) as holder:
        holder.autocommit = False
        with holder.cursor() as cursor:
            cursor.execute(f"lock table {', '.join('raw.' + t for t in RAW_TABLES)} in exclusive mode")
        first = subprocess.Popen(
            [str(MELTANO), "run", "--no-install", JOB],
            cwd=PROJECT_ROOT,
            env=p.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_until_loader_waits(p, first)
            second = subprocess.run(
                [str(MELTANO), "run", "--no-install", JOB],
                cwd=PROJECT_ROOT,
                env=p.env,
                capture_output=True,
                text=True,
                timeout=PIPELINE_TIMEOUT,
                check=False,
            )
            assert first.poll() is None, "the held run ended while held"
        finally:
            holder.rollback()  # releases the tables
        output, _ = first.communicate(timeout=PIPELINE_TIMEOUT)
    assert first.returncode == 0, output[-4000:]
    return p, second, first.returncode


def wait_until_loader_waits(p: Pipeline, run: subprocess.Popen) -> None:
    """Until Meltano has recorded the run in Postgres and the loader waits for the locked tables."""
    deadline = time.monotonic() + PIPELINE_TIMEOUT
    while True:
        assert run.poll() is None, (
            f"the first run ended early: {run.stdout.read()[-3000:] if run.stdout else ''}"
        )
        waiting = p.query(
            "select count(*) as n from pg_locks join pg_class on pg_class.oid = pg_locks.relation"
            f" where not granted and relname in ({', '.join(repr(t) for t in RAW_TABLES)})"
        )[0]["n"]
        running = p.query(
            f"select count(*) as n from runs where job_name = '{STATE_ID}' and state = 'RUNNING'"
        )[0]["n"]
        if waiting and running:
            return
        assert time.monotonic() < deadline, "the first run never reached its load"
        time.sleep(0.2)


def test_backfill_lands_what_the_sandbox_serves_with_state_tokens_and_events_in_postgres(pipeline) -> None:
    p = pipeline
    served = p.reader.everything()
    assert all(served[stream] for stream in COLLECTIONS), "the sandbox served an empty collection"
    assert_warehouse_matches_sandbox(served, p.warehouse())

    # Meltano's state: bookmarks of every collection, in the server's system tables, no token in them.
    (state,) = p.query(f"select completed_state from state where state_id = '{STATE_ID}'")
    bookmarks = json.loads(state["completed_state"])["singer_state"]["bookmarks"]
    assert set(COLLECTIONS) <= set(bookmarks), sorted(bookmarks)
    assert p.env["TAP_WHOOP_REFRESH_TOKEN"] not in state["completed_state"]
    # The rotated tokens: one row for the app, past its first version; not the refresh token it started from.
    tokens = p.query("select client_id, version, payload from public.tap_whoop_tokens")
    assert [(t["client_id"], t["version"] >= 1) for t in tokens] == [(p.env["TAP_WHOOP_CLIENT_ID"], True)]
    assert p.env["TAP_WHOOP_REFRESH_TOKEN"] not in tokens[0]["payload"]


def test_load_times_are_utc_whatever_the_zones_of_machine_and_server(pipeline) -> None:
    """The server's clock zone is UTC+14 and the pipeline's processes run at UTC-11: every time written (the
    tap's extraction, the loader's batch, dbt's loaded_at) still falls within a run's UTC window."""
    stamped = load_stamps(pipeline.warehouse())
    naive = [(name, value) for name, value in stamped if value.tzinfo is None]
    outside = outside_runs(naive, pipeline.runs)
    assert naive, "no naive timestamps: the warehouse's UTC convention is not what this test reads"
    assert not outside, f"not within a run's UTC window {pipeline.runs}: {outside[:5]}"


def test_incremental_run_reflects_changes_and_deletions(after_changes) -> None:
    p, c = after_changes, after_changes.changes
    assert c["rescored"], "the sandbox had no pending scores to rescore: the check would be vacuous"
    served = p.reader.everything()
    assert_warehouse_matches_sandbox(served, p.live_warehouse())
    assert p.ids("raw.workouts", "id") >= {c["workout"]["id"]}, "raw keeps the last version WHOOP served"

    # Fields the tap does not model: target-postgres stores the tap's JSON text as text, staging as JSONB.
    types = {
        (r["table_schema"], r["table_name"]): r["data_type"]
        for r in p.query(
            "select table_schema, table_name, data_type from information_schema.columns"
            " where column_name = 'unmodelled_fields'"
        )
    }
    assert types[("raw", "recoveries")] in {"text", "character varying"}, types
    for stream in RAW_TABLES:
        assert types[("staging", f"stg_whoop__{stream}")] == "jsonb", types
    kept = {
        str(r["cycle_id"]): kept_unmodelled(r)
        for r in p.query("select cycle_id, unmodelled_fields from staging.stg_whoop__recoveries")
    }
    expected = {str(r["cycle_id"]): served_paths(r, ADDED_FIELDS) for r in served["recoveries"]}
    assert kept == expected
    assert any(expected.values())

    deleted = {
        (r["stream"], r["id"]): r["detected_by"]
        for r in p.query("select stream, id, detected_by from raw.deleted_records")
    }
    old_sleep = c["old_sleep"]["id"]
    assert deleted == {
        ("workouts", c["workout"]["id"]): "reconciliation",
        ("sleeps", old_sleep): "webhook",
        ("recoveries", old_sleep): "webhook",
    }
    # The webhook event log lives in Postgres beside the tokens; the edit delivered twice is stored once.
    events = p.query("select type, record_id from public.tap_whoop_events")
    assert ("sleep.deleted", old_sleep) in {(e["type"], e["record_id"]) for e in events}
    assert [e["record_id"] for e in events].count(c["edited"]["id"]) == 1

    for stream, key in (("cycles", "id"), ("sleeps", "id"), ("recoveries", "cycle_id"), ("workouts", "id")):
        assert p.ids(f"staging.stg_whoop__{stream}", STAGING_KEYS[stream]) == {
            str(r[key]) for r in served[stream]
        }
    assert c["workout"]["id"] not in p.ids("marts.fct_workouts", "workout_id")
    assert c["past_workout"]["id"] in p.ids("marts.fct_workouts", "workout_id")
    assert old_sleep not in p.ids("marts.fct_sleeps", "sleep_id") | p.ids(
        "marts.fct_daily_health", "main_sleep_id"
    )
    # The sleep signals: the edited sleep's samples are its new stream's alone, the deleted sleep's left.
    new_stream = p.reader.get(f"/v2/activity/sleep/{c['edited_sleep']['id']}/stream")["stream"]
    staged = p.query(
        "select sampled_at, heart_rate_bpm from staging.stg_whoop__sleep_signals"
        f" where sleep_id = '{c['edited_sleep']['id']}' order by sampled_at"
    )
    assert [(r["sampled_at"], r["heart_rate_bpm"]) for r in staged] == [
        (dt.datetime.fromisoformat(s["timestamp"]).astimezone(dt.UTC).replace(tzinfo=None), s["hr"])
        for s in new_stream
    ]
    (vitals,) = p.query(
        f"select sample_count from marts.fct_sleep_vitals where sleep_id = '{c['edited_sleep']['id']}'"
    )
    assert vitals["sample_count"] == len(new_stream)
    assert old_sleep not in p.ids("staging.stg_whoop__sleep_signals", "sleep_id") | p.ids(
        "marts.fct_sleep_vitals", "sleep_id"
    )
    assert old_sleep in p.ids("raw.sleep_signals", "sleep_id"), "raw keeps the stream as last served"
    (edited,) = p.query(f"select sport_name from marts.fct_workouts where workout_id = '{c['edited']['id']}'")
    assert edited["sport_name"] == c["edited"]["sport_name"]
    # The deleted workout's cycle: one workout, its strain fewer.
    gone = c["before"]["workouts"][c["workout"]["id"]]
    was = c["before"]["cycles"][gone["cycle_id"]]
    (now,) = p.query(f"select * from marts.fct_cycles where cycle_id = {gone['cycle_id']}")
    (past,) = p.query(
        f"select cycle_id from marts.fct_workouts where workout_id = '{c['past_workout']['id']}'"
    )
    assert now["workout_count"] == was["workout_count"] - 1 + (past["cycle_id"] == gone["cycle_id"])


def test_the_reports_sources_read_the_marts_from_postgres(pipeline) -> None:
    """`make report` in the environment postgres: Evidence reads every source query from the server, dates
    unshifted though the server runs at UTC+14 (the site's build from those files is the report tests')."""
    from whoop_report.build import Report, sources

    report = Report(PROJECT_ROOT / "reports")
    env = {**pipeline.env, "WHOOP_REPORT_WAREHOUSE": "postgres"}
    sources(report, "postgres", env, None)
    queries = report.source_queries()
    assert "daily_health" in queries
    for query in queries:
        sql = (report.source_dir / f"{query}.sql").read_text(encoding="utf-8")
        expected = pipeline.query(sql)
        parquet = report.data_dir / query / f"{query}.parquet"
        with duckdb.connect() as con:
            cursor = con.execute(f"select * from read_parquet('{parquet}')")
            columns = [d[0].lower() for d in cursor.description]
            got = [dict(zip(columns, r, strict=True)) for r in cursor.fetchall()]
        assert expected, f"{query}: no rows in Postgres, the comparison would be vacuous"
        assert len(got) == len(expected), query
        if "date_day" in columns:
            assert sorted(str(r["date_day"])[:10] for r in got) == sorted(
                str(r["date_day"]) for r in expected
            )
    assert pipeline.env["PGPASSWORD"] not in (report.source_dir / "connection.yaml").read_text(
        encoding="utf-8"
    )


def test_two_runs_at_once_the_second_is_refused_and_the_first_completes(two_runs_at_once) -> None:
    p, second, first_code = two_runs_at_once
    assert second.returncode != 0
    assert f"Another '{STATE_ID}' pipeline is already running" in second.stdout + second.stderr
    assert first_code == 0
    assert p.changes["late_workout"]["id"] in p.ids("marts.fct_workouts", "workout_id")
    assert_warehouse_matches_sandbox(p.reader.everything(), p.live_warehouse())


@pytest.fixture(scope="module")
def rebuilt(two_runs_at_once) -> tuple[Pipeline, dict, dict]:
    p = two_runs_at_once[0]
    incremental = p.warehouse(("marts",))["marts"]
    run_meltano(["invoke", "dbt-postgres:full-refresh"], p.env)
    return p, incremental, p.warehouse(("marts",))["marts"]


def test_full_refresh_rebuilds_exactly_what_the_incremental_runs_built(rebuilt) -> None:
    _, incremental, full = rebuilt
    assert incremental.keys() == full.keys()
    for table, rows in full.items():
        assert rows, f"marts.{table} is empty: the comparison would be vacuous"
        assert strip_load_times(incremental[table]) == approx_floats(strip_load_times(rows)), f"marts.{table}"


def test_duckdb_lands_the_same_marts_for_the_same_whoop_data(rebuilt) -> None:
    p, _, postgres_marts = rebuilt
    client_id, client_secret = p.sandbox.add_client()  # its own app: the Postgres app's tokens stay its own
    db_path = p.tmp / "whoop.duckdb"
    env = isolated_env(
        TZ=zones.BEHIND,
        MELTANO_SYS_DIR_ROOT=str(private_sys_dir(p.tmp / "meltano-sys-duckdb")),
        WHOOP_DUCKDB_PATH=str(db_path),
        TAP_WHOOP_LOOKBACK_DAYS=str(LOOKBACK_DAYS),
        **WITHOUT_UNIT_TESTS,
        **{
            **sandbox_env(p.sandbox, p.tmp / "duckdb", start_date=p.env["TAP_WHOOP_START_DATE"]),
            "TAP_WHOOP_CLIENT_ID": client_id,
            "TAP_WHOOP_CLIENT_SECRET": client_secret,
            "TAP_WHOOP_REFRESH_TOKEN": p.sandbox.grant_refresh_token(0, client_id=client_id),
        },
    )
    run_meltano(["run", "--no-install", "whoop-duckdb"], env)
    with duckdb.connect(str(db_path), read_only=True) as con:
        for table, rows in postgres_marts.items():
            cursor = con.execute(f"select * from marts.{table}")
            columns = [d[0].lower() for d in cursor.description]
            duck = [dict(zip(columns, r, strict=True)) for r in cursor.fetchall()]
            assert duck, f"marts.{table} is empty in DuckDB: the comparison would be vacuous"
            assert per_app(rows) == approx_floats(per_app(duck)), f"marts.{table}"


def per_app(rows: list[dict]) -> list[dict]:
    """Rows without load times, nor when the athlete enrolled (each pipeline is an app of its own)."""
    return strip_load_times([{k: v for k, v in r.items() if k != "enrolled_at"} for r in rows])
