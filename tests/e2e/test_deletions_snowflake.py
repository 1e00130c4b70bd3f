"""Deletions on the production path: target-snowflake and dbt-snowflake on fakesnow, Meltano's prod
environment, and `meltano --environment prod invoke tap-whoop:serve` storing WHOOP's webhooks in Snowflake
beside the tokens. Two runs: the backfill, then the incremental run after deletions (a workout 3 days ago
and a sleep 5 days ago whose webhooks WHOOP lost, a sleep deleted 40 days ago and a workout edited 30 days
ago that only the webhooks tell, the edit delivered twice). A record served again after its deletion:
tests/transform on fakesnow, and the DuckDB end-to-end test.
"""

from __future__ import annotations

import datetime as dt

import pytest
from e2e_support import PROJECT_ROOT, SandboxReader, sandbox_env
from fakesnow_e2e import MELTANO_ON_FAKESNOW, meltano, prod_env, query
from serve_support import ServeProcess
from whoop_sandbox import Sandbox

pytestmark = pytest.mark.timeout(1800)

HISTORY_DAYS = 50


@pytest.fixture(scope="module")
def prod(tmp_path_factory, fakesnow_server, warehouse):
    tmp = tmp_path_factory.mktemp("deletions-snowflake")
    with Sandbox(seed=31, days=HISTORY_DAYS, athletes=1, rate_limits=[]) as sandbox:
        start = (dt.datetime.now(dt.UTC) - dt.timedelta(days=HISTORY_DAYS + 5)).strftime("%Y-%m-%dT00:00:00Z")
        env = prod_env(fakesnow_server, sandbox_env(sandbox, tmp, start_date=start), tmp)
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
