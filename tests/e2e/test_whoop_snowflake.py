"""The production path: `meltano --environment prod run whoop-snowflake` against fakesnow on loopback.

Exercised as in production: the prod environment's settings (database WHOOP, schemas RAW/STAGING/MARTS,
SNOWFLAKE_* credentials), target-snowflake, dbt-snowflake, Meltano's Snowflake state backend, and
`meltano --environment prod invoke tap-whoop:serve` storing WHOOP's webhooks in Snowflake beside the tokens.
Test-only pieces, kept out of meltano.yml: tests/fakesnow_support points the Snowflake connector (state
backend, loader, the tap's token and event stores) at the fakesnow server and loads through INSERTs (fakesnow
has no internal stages); dbt-snowflake runs a copy of transform/ with the test-only fakesnow macros
(fakesnow_support/dbt_project.py).

Three runs against one sandbox, each a fixture building on the previous one (fakesnow is slow, so the
production path is built once):
1. the backfill: raw, models, state and tokens in Snowflake;
2. after a past-dated workout, the incremental run resumes from the state stored in Snowflake; WHOOP now sends
   fields the tap does not model on recent workouts: raw keeps them as JSON text, staging as VARIANT;
3. after deletions (a workout 3 days ago and a sleep 5 days ago whose webhooks WHOOP lost, a sleep deleted 40
   days ago and a workout edited 30 days ago that only the webhooks tell, the edit delivered twice), each
   deleted record leaves staging and the marts, and the models' data tests pass (the runs before leave
   them out). A record served again after its deletion: tests/transform on fakesnow, and the DuckDB
   end-to-end test.
"""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import urlparse

import pytest
from e2e_support import (
    COLLECTIONS,
    DATA_TESTS_RAN,
    KEYS,
    PROJECT_ROOT,
    WITHOUT_TESTS,
    WITHOUT_UNIT_TESTS,
    SandboxReader,
    diff_records,
    kept_unmodelled,
    sandbox_env,
)
from fakesnow_e2e import MELTANO_ON_FAKESNOW, meltano, prod_env, query
from serve_support import ServeProcess
from whoop_sandbox import Sandbox

pytestmark = pytest.mark.timeout(1800)

HISTORY_DAYS = 50
STATE_ID = "prod:tap-whoop-to-target-snowflake"
RAW_KEYS = {**KEYS, "profile": ("user_id",), "body_measurement": ("user_id",)}
# Fields WHOOP begins to send on workouts made in the last days, before the second run (sandbox.add_fields).
ADDED_FIELDS = {"gps": {"km": 5.2}, "score.hr_recovery": 31}


@pytest.fixture(scope="module")
def prod(tmp_path_factory, fakesnow_server, warehouse):
    tmp = tmp_path_factory.mktemp("whoop-snowflake")
    with Sandbox(seed=31, days=HISTORY_DAYS, athletes=1, rate_limits=[], workouts_at=(3, 30)) as sandbox:
        start = (dt.datetime.now(dt.UTC) - dt.timedelta(days=HISTORY_DAYS + 5)).strftime("%Y-%m-%dT00:00:00Z")
        env = prod_env(fakesnow_server, sandbox_env(sandbox, tmp, start_date=start), tmp)
        # The README's production command for the service; its events land in WHOOP.RAW.TAP_WHOOP_EVENTS.
        command = [*MELTANO_ON_FAKESNOW, "--environment", "prod", "invoke", "--no-install", "tap-whoop:serve"]
        with ServeProcess(command, env, tmp / "serve.log", cwd=PROJECT_ROOT) as service:
            sandbox.configure_webhooks(service.webhook_url, retry_delays=[0.2, 0.5, 1.0, 2.0], timeout=10.0)
            yield sandbox, env, SandboxReader(sandbox)


def run(sandbox, env, *, data_tests: bool = False) -> str:
    assert sandbox.wait_for_webhooks(60)
    sandbox.clear_log()
    leave_out = WITHOUT_UNIT_TESTS if data_tests else WITHOUT_TESTS
    return meltano(["run", "--no-install", "whoop-snowflake"], {**env, **leave_out})


@pytest.fixture(scope="module")
def first_run(prod):
    sandbox, env, _ = prod
    run(sandbox, env)
    return prod


@pytest.fixture(scope="module")
def second_run(first_run):
    sandbox, env, _ = first_run
    workout = sandbox.add_past_workout(athlete=0, days_ago=3)
    sandbox.add_fields("workouts", ADDED_FIELDS, since_days_ago=5)
    run(sandbox, env)
    return workout


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


def test_prod_pipeline_lands_raw_models_and_state_in_snowflake(first_run, warehouse) -> None:
    _, env, reader = first_run

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


def test_prod_second_run_resumes_from_snowflake_state(first_run, second_run, warehouse) -> None:
    sandbox, _, reader = first_run
    workout = second_run

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

    # Fields the tap does not model: JSON text in RAW (what target-snowflake makes of the tap's string),
    # VARIANT in STAGING, nested as served (assert_snowflake_matches_sandbox checked raw record by record).
    types = {
        (r["table_schema"], r["table_name"]): r["data_type"]
        for r in query(
            warehouse,
            "select table_schema, table_name, data_type from WHOOP.information_schema.columns"
            " where column_name = 'UNMODELLED_FIELDS'",
        )
    }
    assert types[("RAW", "WORKOUTS")] in {"TEXT", "VARCHAR"}, types
    for stream in ("CYCLES", "SLEEPS", "RECOVERIES", "WORKOUTS", "PROFILE", "BODY_MEASUREMENT"):
        assert types[("STAGING", f"STG_WHOOP__{stream}")] == "VARIANT", types
    (row,) = query(
        warehouse,
        "select unmodelled_fields from WHOOP.STAGING.STG_WHOOP__WORKOUTS"
        f" where workout_id = '{workout['id']}'",
    )
    assert kept_unmodelled(row) == {"gps": {"km": 5.2}, "score": {"hr_recovery": 31}}


def test_prod_deletions_leave_staging_and_marts(first_run, second_run, warehouse) -> None:
    sandbox, env, reader = first_run

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
    assert DATA_TESTS_RAN.search(run(sandbox, env, data_tests=True)), "the build ran no data tests"

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


def test_prod_definitions_are_the_real_snowflake_ones() -> None:
    """The wrappers above are test-only: meltano.yml itself runs the stock plugins against real Snowflake."""
    text = (PROJECT_ROOT / "meltano.yml").read_text(encoding="utf-8")
    assert "fakesnow" not in text.lower()
    assert "executable: target-snowflake" in text
