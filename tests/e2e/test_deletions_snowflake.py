"""Deletions on the production path: target-snowflake and dbt-snowflake on fakesnow, Meltano's prod
environment, and `meltano --environment prod invoke tap-whoop:serve` storing WHOOP's webhooks in Snowflake
beside the tokens. Two runs: the backfill, then the incremental run after deletions (a workout 3 days ago
and a sleep 5 days ago whose webhooks WHOOP lost, a sleep deleted 40 days ago and a workout edited 30 days
ago that only the webhooks tell, the edit delivered twice). A record served again after its deletion:
tests/transform on fakesnow, and the DuckDB end-to-end test.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import subprocess
import sys
import time

import pytest
import snowflake.connector
from e2e_support import (
    FAKESNOW_SUPPORT,
    PROJECT_ROOT,
    VENV_BIN,
    SandboxReader,
    isolated_env,
    run_meltano,
    sandbox_env,
)
from serve_support import ServeProcess
from whoop_sandbox import Sandbox

sys.path.insert(0, str(FAKESNOW_SUPPORT))
from dbt_project import copy_project
from overlay import build_sys_dir

pytestmark = pytest.mark.timeout(1800)

HISTORY_DAYS = 50
MELTANO_ON_FAKESNOW = [sys.executable, str(FAKESNOW_SUPPORT / "run_meltano.py")]
FAKESNOW_NULL_TIMESTAMP = dt.datetime(
    1970, 1, 1
)  # fakesnow's server returns SQL NULL timestamps as the epoch


@pytest.fixture(scope="module")
def fakesnow_server():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [str(VENV_BIN / "fakesnow"), "--server", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            assert server.poll() is None, "the fakesnow server exited at start-up"
            assert time.monotonic() < deadline, "the fakesnow server did not start within 60 s"
            time.sleep(0.2)
        yield {"user": "fake", "password": "snow", "account": "fakesnow", "host": "127.0.0.1", "port": port}
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def warehouse(fakesnow_server):
    connection = snowflake.connector.connect(
        **fakesnow_server,
        protocol="http",
        network_timeout=60,
        session_parameters={"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
    )
    with connection.cursor() as cursor:
        cursor.execute("create database WHOOP")
        cursor.execute("create schema WHOOP.RAW")
    yield connection
    connection.close()


def query(connection, sql: str) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        columns = [d[0].lower() for d in cursor.description]
        return [
            {c: (None if v == FAKESNOW_NULL_TIMESTAMP else v) for c, v in zip(columns, row, strict=True)}
            for row in cursor.fetchall()
        ]


def meltano(args: list[str], env: dict[str, str]) -> str:
    return run_meltano(args, env, entry=MELTANO_ON_FAKESNOW)


@pytest.fixture(scope="module")
def prod(tmp_path_factory, fakesnow_server, warehouse):
    tmp = tmp_path_factory.mktemp("deletions-snowflake")
    server = fakesnow_server
    with Sandbox(seed=31, days=HISTORY_DAYS, athletes=1, rate_limits=[]) as sandbox:
        start = (dt.datetime.now(dt.UTC) - dt.timedelta(days=HISTORY_DAYS + 5)).strftime("%Y-%m-%dT00:00:00Z")
        whoop = sandbox_env(sandbox, tmp, start_date=start)
        del whoop["TAP_WHOOP_TOKEN_STORE"]  # production reads it from WHOOP_TOKEN_STORE_URL
        env = isolated_env(
            **whoop,
            WHOOP_TOKEN_STORE_URL=(
                f"snowflake://{server['user']}:{server['password']}@{server['account']}/WHOOP/RAW?warehouse=COMPUTE_WH"
            ),
            MELTANO_ENVIRONMENT="prod",
            MELTANO_SYS_DIR_ROOT=str(build_sys_dir(PROJECT_ROOT / ".meltano", tmp / "meltano-sys")),
            SNOWFLAKE_ACCOUNT=server["account"],
            SNOWFLAKE_USER=server["user"],
            SNOWFLAKE_PASSWORD=server["password"],
            SNOWFLAKE_WAREHOUSE="COMPUTE_WH",
            SNOWFLAKE_HOST=server["host"],
            SNOWFLAKE_PORT=str(server["port"]),
            SNOWFLAKE_PROTOCOL="http",
            MELTANO_STATE_BACKEND_URI=(
                f"snowflake://{server['user']}@{server['account']}/WHOOP/RAW?warehouse=COMPUTE_WH"
            ),
            MELTANO_STATE_BACKEND_SNOWFLAKE_PASSWORD=server["password"],
            DBT_SNOWFLAKE_PROJECT_DIR=str(copy_project(tmp / "transform")),
        )
        # The README's production command for the service; its events land in WHOOP.RAW.TAP_WHOOP_EVENTS.
        command = [*MELTANO_ON_FAKESNOW, "--environment", "prod", "invoke", "--no-install", "tap-whoop:serve"]
        with ServeProcess(command, env, tmp / "serve.log", cwd=PROJECT_ROOT) as service:
            sandbox.configure_webhooks(service.webhook_url, retry_delays=[0.2, 0.5, 1.0, 2.0], timeout=10.0)
            yield sandbox, env, SandboxReader(sandbox)


def run(sandbox, env) -> None:
    assert sandbox.wait_for_webhooks(60)
    meltano(["run", "--no-install", "whoop-snowflake"], env)


def ids(warehouse, table: str, column: str) -> set[str]:
    return {str(r[column]) for r in query(warehouse, f"select {column} from WHOOP.{table}")}


def cycle_figures(warehouse, cycle_id) -> dict[str, dict]:
    """A cycle's workout figures as fct_cycles and fct_daily_health hold them."""
    return {
        table: one
        for table in ("FCT_CYCLES", "FCT_DAILY_HEALTH")
        for (one,) in [
            query(
                warehouse,
                "select workout_count, workout_strain, workout_minutes"
                f" from WHOOP.MARTS.{table} where cycle_id = {cycle_id}",
            )
        ]
    }


def test_prod_deletions_leave_staging_and_marts(prod, warehouse) -> None:
    sandbox, env, reader = prod
    run(sandbox, env)

    sandbox.inject_webhook_fault("drop", count=1, type_prefix="workout.")
    workout = sandbox.record_near("workout", athlete=0, days_ago=3)
    (victim,) = query(
        warehouse,
        "select cycle_id, strain, duration_minutes from WHOOP.MARTS.FCT_WORKOUTS"
        f" where workout_id = '{workout['id']}'",
    )
    before = cycle_figures(warehouse, victim["cycle_id"])
    sandbox.delete_record("workout", workout["id"])
    sandbox.inject_webhook_fault("drop", count=2)
    sleep = sandbox.record_near("sleep", athlete=0, days_ago=5)
    sandbox.delete_record("sleep", sleep["id"])
    old_sleep = sandbox.record_near("sleep", athlete=0, days_ago=40)
    sandbox.delete_record("sleep", old_sleep["id"])
    sandbox.inject_webhook_fault("duplicate", count=1, type_prefix="workout.")
    edited = sandbox.edit_workout(athlete=0, days_ago=30)
    run(sandbox, env)

    deleted = {
        (r["stream"], r["id"]): r["detected_by"]
        for r in query(warehouse, "select stream, id, detected_by from WHOOP.RAW.DELETED_RECORDS")
    }
    assert deleted == {
        ("workouts", workout["id"]): "reconciliation",
        ("sleeps", sleep["id"]): "reconciliation",
        ("recoveries", sleep["id"]): "reconciliation",
        ("sleeps", old_sleep["id"]): "webhook",
        ("recoveries", old_sleep["id"]): "webhook",
    }
    events = query(warehouse, "select type, record_id from WHOOP.RAW.TAP_WHOOP_EVENTS")
    assert {(e["type"], e["record_id"]) for e in events} >= {
        ("sleep.deleted", old_sleep["id"]),
        ("workout.updated", edited["id"]),
    }
    # WHOOP delivered the edit twice (same trace_id): the Snowflake event log stored it once.
    assert [e["record_id"] for e in events].count(edited["id"]) == 1
    served = reader.everything()
    assert ids(warehouse, "STAGING.STG_WHOOP__WORKOUTS", "workout_id") == {
        w["id"] for w in served["workouts"]
    }
    assert ids(warehouse, "STAGING.STG_WHOOP__SLEEPS", "sleep_id") == {s["id"] for s in served["sleeps"]}
    recoveries = ids(warehouse, "STAGING.STG_WHOOP__RECOVERIES", "sleep_id")
    assert not {sleep["id"], old_sleep["id"]} & recoveries
    assert workout["id"] not in ids(warehouse, "MARTS.FCT_WORKOUTS", "workout_id")
    assert not {sleep["id"], old_sleep["id"]} & ids(warehouse, "MARTS.FCT_SLEEPS", "sleep_id")
    (sport,) = query(
        warehouse, f"select sport_name from WHOOP.MARTS.FCT_WORKOUTS where workout_id = '{edited['id']}'"
    )
    assert sport["sport_name"] == edited["sport_name"]
    assert query(warehouse, f"select id from WHOOP.RAW.WORKOUTS where id = '{workout['id']}'")  # raw keeps it
    # The deleted workout's cycle, in fct_cycles and on its day: one workout, its strain and minutes fewer.
    after = cycle_figures(warehouse, victim["cycle_id"])
    for table in ("FCT_CYCLES", "FCT_DAILY_HEALTH"):
        was, now = before[table], after[table]
        assert now["workout_count"] == was["workout_count"] - 1, table
        assert now["workout_strain"] == pytest.approx(was["workout_strain"] - victim["strain"]), table
        assert now["workout_minutes"] == pytest.approx(was["workout_minutes"] - victim["duration_minutes"]), (
            table
        )
    daily_sleeps = ids(warehouse, "MARTS.FCT_DAILY_HEALTH", "main_sleep_id")
    assert not {sleep["id"], old_sleep["id"]} & daily_sleeps
