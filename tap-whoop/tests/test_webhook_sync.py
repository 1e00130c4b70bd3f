"""`webhooks` on: sleeps, recoveries and workouts from the events between sweeps, cycles listed every run, a
sweep every `sweep_hours` that brings what a lost delivery missed, and a warning when the events stop."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from tap_whoop.cli import commands
from tap_whoop.streams.base import WhoopStream
from tap_whoop.streams.incremental import SWEPT_AT
from tap_whoop.sync.budget import LEDGER_KEY, DailyBudget

from .conftest import COLLECTION_PATHS, run_tap
from .test_deletions import START, deleted, lookups, partition, store_events, webhook

# Time arithmetic: the date lane (make test-dates) runs this module at every date it tries.
pytestmark = pytest.mark.clock

HOUR = 3600.0
EVENT_STREAMS = ("sleeps", "recoveries", "workouts")


@pytest.fixture
def sandbox(whoop_sandbox_factory):
    return whoop_sandbox_factory(seed=11, days=45, athletes=1, rate_limits=[], workouts_at=(2, 5))


@pytest.fixture
def at(monkeypatch):
    """`at(hours)`: the tap's calendar (when sweeps fall due) `hours` after the test began."""
    began = time.time()

    def move(hours: float) -> None:
        monkeypatch.setattr(WhoopStream, "clock", staticmethod(lambda: began + hours * HOUR))

    move(0)
    return move


@pytest.fixture
def config(sandbox, make_config):
    return make_config(sandbox, start_date=START, webhooks=True)


@pytest.fixture
def baseline(config, at):
    first = run_tap(config)
    assert first.error is None
    return first


def listed(sandbox) -> list[str]:
    """The collections listed, by stream name, in request order."""
    names = {path: name for name, path in COLLECTION_PATHS.items()}
    return [names[e["path"]] for e in sandbox.request_log if e["path"] in names]


def test_between_sweeps_only_cycles_are_listed_and_events_bring_the_changes(sandbox, config, baseline, at):
    assert sorted(set(listed(sandbox))) == sorted(COLLECTION_PATHS)  # the first run lists all four
    swept = {s: partition(baseline.state, s)[SWEPT_AT] for s in EVENT_STREAMS}
    workout = sandbox.edit_workout(athlete=0, days_ago=2)
    sleep = sandbox.record_near("sleep", athlete=0, days_ago=4)
    sandbox.delete_record("sleep", sleep["id"])
    store_events(
        config,
        webhook(sandbox, "workout.updated", workout["id"]),
        webhook(sandbox, "sleep.deleted", sleep["id"]),
        webhook(sandbox, "recovery.deleted", sleep["id"]),
    )
    at(3)
    sandbox.clear_log()

    second = run_tap(config, state=baseline.state)

    assert second.error is None
    assert listed(sandbox) == ["cycles"]
    assert lookups(sandbox) == [f"/v2/activity/workout/{workout['id']}"]
    assert second.served("workouts") == [workout]
    assert set(deleted(second)) == {("sleeps", sleep["id"]), ("recoveries", sleep["id"])}
    assert {r["detected_by"] for r in second.records["deleted_records"]} == {"webhook"}
    for stream in EVENT_STREAMS:
        assert partition(second.state, stream)[SWEPT_AT] == swept[stream]
    # Reconciliation forgot what the events deleted: the next sweep asks nothing about it.
    assert str(sleep["cycle_id"]) not in partition(second.state, "recoveries")["reconciliation"]["seen"]

    at(24)
    sandbox.clear_log()
    sweep = run_tap(config, state=second.state)
    assert sweep.error is None
    assert sorted(listed(sandbox)) == sorted(COLLECTION_PATHS)
    assert lookups(sandbox) == []
    assert sweep.records["deleted_records"] == []
    for stream in EVENT_STREAMS:
        assert partition(sweep.state, stream)[SWEPT_AT] > swept[stream]


def test_a_lost_delivery_and_a_lost_deletion_are_caught_by_the_sweep(sandbox, config, baseline, at):
    workout = sandbox.edit_workout(athlete=0, days_ago=2)  # its workout.updated never stored
    gone = sandbox.record_near("workout", athlete=0, days_ago=5, state=None)
    sandbox.delete_record("workout", gone["id"])  # nor its workout.deleted
    at(3)
    between = run_tap(config, state=baseline.state)
    assert between.error is None
    assert between.records["workouts"] == []
    assert between.records["deleted_records"] == []

    at(24)
    sandbox.clear_log()
    sweep = run_tap(config, state=between.state)

    assert sweep.error is None
    assert workout in sweep.served("workouts")
    (row,) = sweep.records["deleted_records"]
    assert (row["stream"], row["id"], row["detected_by"]) == ("workouts", gone["id"], "reconciliation")
    assert lookups(sandbox) == [f"/v2/activity/workout/{gone['id']}"]


def test_duplicate_and_out_of_order_deliveries_change_nothing(sandbox, config, baseline, at):
    edited = sandbox.edit_workout(athlete=0, days_ago=2)
    gone = sandbox.record_near("workout", athlete=0, days_ago=5, state=None)
    sandbox.delete_record("workout", gone["id"])
    store_events(
        config,
        webhook(sandbox, "workout.updated", edited["id"]),
        webhook(sandbox, "workout.updated", edited["id"]),  # a duplicate under another trace_id
        webhook(sandbox, "workout.deleted", gone["id"]),
        webhook(sandbox, "workout.updated", gone["id"]),  # an update delivered after its deletion
    )
    at(3)
    sandbox.clear_log()

    second = run_tap(config, state=baseline.state)

    assert second.error is None
    assert second.served("workouts") == [edited]
    assert lookups(sandbox) == [f"/v2/activity/workout/{i}" for i in (edited["id"], gone["id"])]
    ((key, row),) = deleted(second).items()
    assert (key, row["detected_by"]) == (("workouts", gone["id"]), "webhook")
    at(24)
    sandbox.clear_log()
    sweep = run_tap(config, state=second.state)
    assert sweep.records["deleted_records"] == []
    assert lookups(sandbox) == []


def test_without_the_setting_every_run_lists_all_four(sandbox, make_config, at):
    config = make_config(sandbox, start_date=START)
    first = run_tap(config)
    at(3)
    sandbox.clear_log()
    second = run_tap(config, state=first.state)
    assert sorted(listed(sandbox)) == sorted(COLLECTION_PATHS)
    assert all(SWEPT_AT not in partition(second.state, s) for s in EVENT_STREAMS)


def test_a_silent_webhook_is_reported_with_its_fix_and_athletes_list_shows_the_last_event(
    sandbox, config, baseline, at, caplog, tmp_path
):
    caplog.set_level(logging.WARNING, logger="tap-whoop")
    at(49)
    assert run_tap(config, state=baseline.state).error is None
    user_id = sandbox.athletes[0].user_id
    (warning,) = [r.getMessage() for r in caplog.records if "No webhook event" in r.getMessage()]
    assert f"{user_id} (last event never)" in warning
    assert "developer dashboard" in warning
    assert "`tap-whoop serve` is running" in warning

    received = dt.datetime.fromtimestamp(WhoopStream.clock(), dt.UTC) - dt.timedelta(hours=47)
    store_events(config, webhook(sandbox, "workout.updated", str(sandbox.record_near("workout")["id"])),
                 received_at=received)  # fmt: skip
    caplog.clear()
    assert run_tap(config, state=baseline.state).error is None
    assert not [r for r in caplog.records if "No webhook event" in r.getMessage()]

    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    result = CliRunner().invoke(commands, ["athletes", "list", "--config", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["last_event_at"] == received.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    table = CliRunner().invoke(commands, ["athletes", "list", "--config", str(path)])
    assert "last_event_at" in table.stdout


def test_the_daily_budget_reserves_a_day_of_runs_with_its_sweep():
    now = 1_000_000.0
    # A day on the 3-hourly schedule: seven runs of 10 calls between sweeps, one sweep of 40.
    runs = [{"at": now - h * HOUR, "calls": 10, "discretionary": 0, "incremental": 10} for h in (3, 6, 9, 12)]
    runs += [{"at": now - 15 * HOUR, "calls": 40, "discretionary": 0, "incremental": 40}]
    runs += [{"at": now - h * HOUR, "calls": 10, "discretionary": 0, "incremental": 10} for h in (18, 21)]
    budget = DailyBudget({LEDGER_KEY: {"runs": runs}}, SimpleNamespace(requests=0), clock=lambda: now)
    budget.incremental_per_run = 10
    assert budget.runs_per_day == 8
    assert budget.reserve == 110  # not 10 x 8: the sweep's extra 30 calls are held back too
    budget.incremental_per_run = 40  # the sweep run itself: its own cost a day long is more
    assert budget.reserve == 320
