"""The production path: `meltano --environment prod run whoop-snowflake` against fakesnow on loopback.

Exercised as in production: the prod environment's settings (database WHOOP, schemas RAW/STAGING/MARTS,
SNOWFLAKE_* credentials), target-snowflake, dbt-snowflake and Meltano's Snowflake state backend. Test-only
pieces, kept out of meltano.yml: tests/fakesnow_support points the Snowflake connector (state backend, loader,
the tap's token store) at the fakesnow server and loads through INSERTs (fakesnow has no internal stages);
dbt-snowflake runs a copy of transform/ with the test-only fakesnow macros (fakesnow_support/dbt_project.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import socket
import subprocess
import sys
import time
from urllib.parse import urlparse

import pytest
import snowflake.connector
from e2e_support import (
    COLLECTIONS,
    FAKESNOW_SUPPORT,
    KEYS,
    PROJECT_ROOT,
    VENV_BIN,
    SandboxReader,
    diff_records,
    isolated_env,
    run_meltano,
    sandbox_env,
)
from whoop_sandbox import Sandbox

sys.path.insert(0, str(FAKESNOW_SUPPORT))
from dbt_project import copy_project
from overlay import build_sys_dir  # lives beside the wrappers it installs

pytestmark = pytest.mark.timeout(1500)

HISTORY_DAYS = 30
STATE_ID = "prod:tap-whoop-to-target-snowflake"
RAW_KEYS = {**KEYS, "profile": ("user_id",), "body_measurement": ("user_id",)}
MELTANO_ON_FAKESNOW = [sys.executable, str(FAKESNOW_SUPPORT / "run_meltano.py")]
# fakesnow's server returns SQL NULL timestamps as the epoch (a known fakesnow gap, see the toolchain notes).
FAKESNOW_NULL_TIMESTAMP = dt.datetime(1970, 1, 1)  # the connector returns naive timestamps


@pytest.fixture(scope="module")
def fakesnow_server():
    """A fakesnow server in its own process: its catalog is ours alone, and nothing leaks into this one."""
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
        # fakesnow accepts any credentials; these are its documented defaults.
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
        # What an administrator creates once in production (README): the database and the schema for state.
        cursor.execute("create database WHOOP")
        cursor.execute("create schema WHOOP.RAW")
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def prod(tmp_path_factory, fakesnow_server, warehouse):
    tmp = tmp_path_factory.mktemp("whoop-snowflake")
    sandbox = Sandbox(seed=5, days=HISTORY_DAYS, athletes=1, rate_limits=[]).start()
    try:
        start = (dt.datetime.now(dt.UTC) - dt.timedelta(days=HISTORY_DAYS + 5)).strftime("%Y-%m-%dT00:00:00Z")
        whoop = sandbox_env(sandbox, tmp, start_date=start)
        del whoop["TAP_WHOOP_TOKEN_STORE"]  # production reads it from WHOOP_TOKEN_STORE_URL, as below
        env = isolated_env(
            **whoop,
            WHOOP_TOKEN_STORE_URL=(
                f"snowflake://{fakesnow_server['user']}:{fakesnow_server['password']}"
                f"@{fakesnow_server['account']}/WHOOP/RAW?warehouse=COMPUTE_WH"
            ),
            MELTANO_ENVIRONMENT="prod",
            MELTANO_SYS_DIR_ROOT=str(build_sys_dir(PROJECT_ROOT / ".meltano", tmp / "meltano-sys")),
            SNOWFLAKE_ACCOUNT=fakesnow_server["account"],
            SNOWFLAKE_USER=fakesnow_server["user"],
            SNOWFLAKE_PASSWORD=fakesnow_server["password"],
            SNOWFLAKE_WAREHOUSE="COMPUTE_WH",
            SNOWFLAKE_HOST=fakesnow_server["host"],
            SNOWFLAKE_PORT=str(fakesnow_server["port"]),
            SNOWFLAKE_PROTOCOL="http",
            # As the README sets them for production (Meltano reads its state backend from the environment).
            MELTANO_STATE_BACKEND_URI=(
                f"snowflake://{fakesnow_server['user']}@{fakesnow_server['account']}/WHOOP/RAW?warehouse=COMPUTE_WH"
            ),
            MELTANO_STATE_BACKEND_SNOWFLAKE_PASSWORD=fakesnow_server["password"],
            # Meltano's own variable for the utility's project_dir setting.
            DBT_SNOWFLAKE_PROJECT_DIR=str(copy_project(tmp / "transform")),
        )
        yield sandbox, env, SandboxReader(sandbox)
    finally:
        sandbox.stop()


def meltano(args: list[str], env: dict[str, str]) -> str:
    return run_meltano(args, env, entry=MELTANO_ON_FAKESNOW)


def query(connection, sql: str) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        columns = [d[0].lower() for d in cursor.description]
        return [
            {c: (None if v == FAKESNOW_NULL_TIMESTAMP else v) for c, v in zip(columns, row, strict=True)}
            for row in cursor.fetchall()
        ]


def assert_snowflake_matches_sandbox(warehouse, reader: SandboxReader) -> None:
    served = reader.everything()
    problems = []
    for stream, keys in RAW_KEYS.items():
        rows = query(warehouse, f"select * from WHOOP.RAW.{stream.upper()}")
        problems += diff_records(f"RAW.{stream.upper()}", served[stream], rows, keys)
    models = {
        "STAGING.STG_WHOOP__CYCLES": len(served["cycles"]),
        "STAGING.STG_WHOOP__SLEEPS": len(served["sleeps"]),
        "STAGING.STG_WHOOP__RECOVERIES": len(served["recoveries"]),
        "STAGING.STG_WHOOP__WORKOUTS": len(served["workouts"]),
        "MARTS.FCT_CYCLES": len(served["cycles"]),
        "MARTS.FCT_SLEEPS": len(served["sleeps"]),
        "MARTS.FCT_WORKOUTS": len(served["workouts"]),
        "MARTS.DIM_USER": 1,
    }
    for model, expected in models.items():
        (row,) = query(warehouse, f"select count(*) as n from WHOOP.{model}")
        if row["n"] != expected:
            problems.append(f"{model}: {row['n']} rows, expected {expected}")
    assert not problems, "\n".join(problems[:40])


def test_prod_pipeline_lands_raw_models_and_state_in_snowflake(prod, warehouse) -> None:
    _, env, reader = prod
    meltano(["run", "--no-install", "whoop-snowflake"], env)

    assert_snowflake_matches_sandbox(warehouse, reader)

    # Bookmarks live in Snowflake beside the data, and Meltano reads them back from there.
    (stored,) = query(warehouse, f"select state from WHOOP.RAW.MELTANO_STATE where state_id = '{STATE_ID}'")
    state = stored["state"] if isinstance(stored["state"], dict) else json.loads(stored["state"])
    bookmarks = state["completed"]["singer_state"]["bookmarks"]
    assert set(COLLECTIONS) <= set(bookmarks), f"state lacks bookmarks: {sorted(bookmarks)}"
    assert STATE_ID in meltano(["state", "list"], env)
    assert env["TAP_WHOOP_REFRESH_TOKEN"] not in json.dumps(state), "a token leaked into the state"

    # The rotated WHOOP tokens live in Snowflake too (the tap's SQL token store), not on the worker's disk.
    tokens = query(warehouse, "select client_id, version, payload from WHOOP.RAW.TAP_WHOOP_TOKENS")
    assert [(t["client_id"], t["version"] >= 1) for t in tokens] == [(env["TAP_WHOOP_CLIENT_ID"], True)]
    assert env["TAP_WHOOP_REFRESH_TOKEN"] not in tokens[0]["payload"], "the store kept the used refresh token"


def test_prod_second_run_resumes_from_snowflake_state(prod, warehouse) -> None:
    sandbox, env, reader = prod
    if not query(warehouse, f"select state_id from WHOOP.RAW.MELTANO_STATE where state_id = '{STATE_ID}'"):
        meltano(["run", "--no-install", "whoop-snowflake"], env)
    workout = sandbox.add_past_workout(athlete=0, days_ago=3)
    sandbox.clear_log()

    meltano(["run", "--no-install", "whoop-snowflake"], env)

    assert_snowflake_matches_sandbox(warehouse, reader)
    assert query(warehouse, f"select id from WHOOP.RAW.WORKOUTS where id = '{workout['id']}'")
    # Incremental, from the state stored in Snowflake: the cycles request starts near the bookmark, not at
    # the start_date of a first run.
    cycle_calls = [
        e for e in sandbox.request_log if e["path"] == urlparse(sandbox.api_url).path + COLLECTIONS["cycles"]
    ]
    assert cycle_calls
    first_start = dt.datetime.fromisoformat(cycle_calls[0]["params"]["start"].replace("Z", "+00:00"))
    assert first_start > dt.datetime.now(dt.UTC) - dt.timedelta(days=HISTORY_DAYS), first_start


def test_prod_definitions_are_the_real_snowflake_ones() -> None:
    """The wrappers above are test-only: meltano.yml itself runs the stock plugins against real Snowflake."""
    text = (PROJECT_ROOT / "meltano.yml").read_text(encoding="utf-8")
    assert "fakesnow" not in text.lower()
    assert "executable: target-snowflake" in text
