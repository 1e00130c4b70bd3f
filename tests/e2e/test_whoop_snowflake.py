"""The production path: `meltano --environment prod run whoop-snowflake` against fakesnow on loopback.

Exercised as in production: the prod environment's settings (database WHOOP, schemas RAW/STAGING/MARTS,
SNOWFLAKE_* credentials), target-snowflake, dbt-snowflake and Meltano's Snowflake state backend. Test-only
pieces, kept out of meltano.yml: tests/fakesnow_support points the Snowflake connector (state backend, loader,
the tap's token store) at the fakesnow server and loads through INSERTs (fakesnow has no internal stages);
dbt-snowflake runs a copy of transform/ with the test-only fakesnow macros (fakesnow_support/dbt_project.py).
"""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import urlparse

import pytest
from e2e_support import COLLECTIONS, KEYS, PROJECT_ROOT, SandboxReader, diff_records, sandbox_env
from fakesnow_e2e import meltano, prod_env, query
from whoop_sandbox import Sandbox

pytestmark = pytest.mark.timeout(1500)

HISTORY_DAYS = 30
STATE_ID = "prod:tap-whoop-to-target-snowflake"
RAW_KEYS = {**KEYS, "profile": ("user_id",), "body_measurement": ("user_id",)}


@pytest.fixture(scope="module")
def prod(tmp_path_factory, fakesnow_server, warehouse):
    tmp = tmp_path_factory.mktemp("whoop-snowflake")
    sandbox = Sandbox(seed=5, days=HISTORY_DAYS, athletes=1, rate_limits=[]).start()
    try:
        start = (dt.datetime.now(dt.UTC) - dt.timedelta(days=HISTORY_DAYS + 5)).strftime("%Y-%m-%dT00:00:00Z")
        env = prod_env(fakesnow_server, sandbox_env(sandbox, tmp, start_date=start), tmp)
        yield sandbox, env, SandboxReader(sandbox)
    finally:
        sandbox.stop()


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
