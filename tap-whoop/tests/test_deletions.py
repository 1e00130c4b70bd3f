"""Deletions: reconciliation of the lookback window, webhook events past the tap's cursor, and the hand-off
to `deleted_records` that no crash can lose."""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import re
import uuid

import pytest
from tap_whoop.deletions import reconcile
from tap_whoop.deletions.events import WebhookEvent
from tap_whoop.stores import open_event_log
from tap_whoop.streams.endpoints import DeletedRecordsStream

from .conftest import COLLECTIONS, START, run_tap

# Time arithmetic: the date lane (make test-dates) runs this module at every date it tries.
pytestmark = pytest.mark.clock

SINGLE_RECORD = re.compile(r"/developer/v2/(cycle/\d+(/recovery)?|activity/(sleep|workout)/[0-9a-f-]{36})$")


@pytest.fixture
def sandbox(whoop_sandbox_factory):
    return whoop_sandbox_factory(seed=11, days=45, athletes=1, rate_limits=[], workouts_at=(2, 3, 4, 30))


def lookups(sandbox) -> list[str]:
    return [
        e["path"].removeprefix("/developer") for e in sandbox.request_log if SINGLE_RECORD.match(e["path"])
    ]


def partition(state: dict, stream: str) -> dict:
    (only,) = state["bookmarks"][stream]["partitions"]
    return only


def deleted(result) -> dict[tuple[str, str], dict]:
    return {(r["stream"], r["id"]): r for r in result.records["deleted_records"]}


def store_events(config: dict, *events: WebhookEvent, received_at: dt.datetime | None = None) -> None:
    log = open_event_log(config["token_store"], config["client_id"])
    for event in events:
        assert log.append(event, received_at or dt.datetime.now(dt.UTC))


def webhook(sandbox, kind: str, record_id: str, user_id: int | None = None) -> WebhookEvent:
    return WebhookEvent(user_id or sandbox.athletes[0].user_id, record_id, kind, str(uuid.uuid4()))


def test_steady_state_costs_no_lookups_and_deletes_nothing(sandbox, config, baseline):
    for stream in COLLECTIONS:
        seen = partition(baseline.state, stream)["reconciliation"]["seen"]
        assert 0 < len(seen) < 60, f"{stream}: the window's keys, not the whole history ({len(seen)})"
    sandbox.clear_log()
    again = run_tap(config, state=baseline.state)
    assert again.error is None
    assert lookups(sandbox) == []
    assert again.records["deleted_records"] == []


def test_deleted_workout_and_sleep_are_confirmed_and_the_sleep_takes_its_recovery(sandbox, config, baseline):
    workout = sandbox.record_near("workout", athlete=0, days_ago=3)
    sleep = sandbox.record_near("sleep", athlete=0, days_ago=5)
    sandbox.delete_record("workout", workout["id"])
    sandbox.delete_record("sleep", sleep["id"])
    sandbox.clear_log()
    before = dt.datetime.now(dt.UTC)

    second = run_tap(config, state=baseline.state)

    assert second.error is None
    rows = deleted(second)
    assert set(rows) == {("workouts", workout["id"]), ("sleeps", sleep["id"]), ("recoveries", sleep["id"])}
    for row in rows.values():
        assert row["detected_by"] == "reconciliation"
        assert row["trace_id"] is None
        assert row["user_id"] == sandbox.athletes[0].user_id
        assert dt.datetime.fromisoformat(row["deleted_at"]) >= before - dt.timedelta(seconds=1)
    # Confirmations only for suspects: the workout and the sleep; the recovery goes with its sleep.
    assert sorted(lookups(sandbox)) == sorted(
        [f"/v2/activity/workout/{workout['id']}", f"/v2/activity/sleep/{sleep['id']}"]
    )
    state = second.state
    assert workout["id"] not in partition(state, "workouts")["reconciliation"]["seen"]
    assert str(sleep["cycle_id"]) not in partition(state, "recoveries")["reconciliation"]["seen"]
    assert "pending" not in partition(state, "deleted_records")
    assert workout["id"] not in {r["id"] for r in second.records["workouts"]}

    sandbox.clear_log()
    third = run_tap(config, state=state)
    assert third.records["deleted_records"] == []
    assert lookups(sandbox) == []


def test_a_deleted_cycle_and_a_lone_recovery_are_confirmed_by_their_own_endpoints(sandbox, config, baseline):
    cycle = sandbox.record_near("cycle", athlete=0, days_ago=6)
    recovery = sandbox.record_near("recovery", athlete=0, days_ago=8)
    sandbox.delete_record("cycle", cycle["id"])
    sandbox.delete_record("recovery", recovery["cycle_id"])
    sandbox.clear_log()
    second = run_tap(config, state=baseline.state)
    assert set(deleted(second)) == {("cycles", str(cycle["id"])), ("recoveries", recovery["sleep_id"])}
    assert sorted(lookups(sandbox)) == sorted(
        [f"/v2/cycle/{cycle['id']}", f"/v2/cycle/{recovery['cycle_id']}/recovery"]
    )


def test_a_record_that_moved_out_of_the_window_deletes_nothing(sandbox, config, baseline):
    workout = sandbox.record_near("workout", athlete=0, days_ago=4)
    moved = sandbox.move_record("workout", workout["id"], days_ago=40)
    sandbox.clear_log()
    second = run_tap(config, state=baseline.state)
    assert second.error is None
    assert second.records["deleted_records"] == []
    assert lookups(sandbox) == [f"/v2/activity/workout/{workout['id']}"]  # a suspect, asked once
    assert moved in second.served("workouts")  # and its new version emitted
    # Settled: the window no longer returns it, so it is not asked about again.
    sandbox.clear_log()
    assert run_tap(config, state=second.state).records["deleted_records"] == []
    assert lookups(sandbox) == []


def test_a_read_cut_short_deletes_nothing(sandbox, make_config, monkeypatch):
    config = make_config(sandbox, start_date=START, lookback_days=40)
    # A window of several pages on any day: the history alone holds 25 +/- 6 workouts in 40 days, so on some
    # days they fit one page of 25 and nothing would be cut short.
    for days_ago in range(2, 28):
        sandbox.add_past_workout(athlete=0, days_ago=days_ago + 0.4)
    first = run_tap(config)
    workout = sandbox.record_near("workout", athlete=0, days_ago=2)
    sandbox.delete_record("workout", workout["id"])
    from tap_whoop.streams.incremental import WhoopCollectionStream

    parse = WhoopCollectionStream.parse_response

    def fail_after_first_page(self, response):
        records = parse(self, response)
        if self.name == "workouts" and self._progress.pages == 1:
            sandbox.inject_fault("503", path_prefix="/developer/v2/activity/workout", count=100)
        return records

    with monkeypatch.context() as patch:
        patch.setattr(WhoopCollectionStream, "parse_response", fail_after_first_page)
        cut = run_tap(config, state=first.state)
    assert cut.error is not None
    assert cut.records["deleted_records"] == []
    assert workout["id"] not in {r["id"] for r in cut.records["workouts"]}
    for state in cut.states:
        assert (
            partition(state, "workouts").get("reconciliation")
            == partition(first.state, "workouts")["reconciliation"]
        )
    sandbox.clear_faults()
    resumed = run_tap(config, state=cut.states[-1])
    assert set(deleted(resumed)) == {("workouts", workout["id"])}


def test_a_failed_confirmation_deletes_nothing_and_asks_again(sandbox, config, baseline, caplog):
    workout = sandbox.record_near("workout", athlete=0, days_ago=3)
    sandbox.delete_record("workout", workout["id"])
    sandbox.inject_fault("500", path_prefix=f"/developer/v2/activity/workout/{workout['id']}", count=100)
    caplog.set_level(logging.WARNING, logger="tap-whoop")
    second = run_tap(config, state=baseline.state)
    assert second.error is None  # the run goes on
    assert second.records["deleted_records"] == []
    assert "asking again next run" in caplog.text
    assert workout["id"] in partition(second.state, "workouts")["reconciliation"]["seen"]
    sandbox.clear_faults()
    third = run_tap(config, state=second.state)
    assert set(deleted(third)) == {("workouts", workout["id"])}


def test_reconciliation_can_be_turned_off(sandbox, make_config):
    config = make_config(sandbox, start_date=START, reconcile_deletions=False)
    first = run_tap(config)
    sandbox.delete_record("workout", sandbox.record_near("workout", athlete=0, days_ago=3)["id"])
    sandbox.clear_log()
    second = run_tap(config, state=first.state)
    assert second.records["deleted_records"] == []
    assert lookups(sandbox) == []
    assert "reconciliation" not in partition(second.state, "workouts")


def test_state_stays_bounded(sandbox, make_config, monkeypatch):
    monkeypatch.setattr(reconcile, "MAX_SEEN", 5)
    config = make_config(sandbox, start_date=START, lookback_days=40)
    result = run_tap(config, state=run_tap(config).state)
    for stream in COLLECTIONS:
        seen = partition(result.state, stream)["reconciliation"]["seen"]
        assert len(seen) == 5
    starts = list(partition(result.state, "workouts")["reconciliation"]["seen"].values())
    assert starts == sorted(starts)  # the newest kept, oldest first
    assert len(json.dumps(result.state)) < 10_000


def test_no_state_message_ever_loses_a_deletion(sandbox, config, baseline, monkeypatch):
    """A crash after the collections committed their state but before deleted_records ran: the deletion waits
    in state, and the next run emits it. Checked for every STATE message of both runs."""
    workout = sandbox.record_near("workout", athlete=0, days_ago=3)
    sandbox.delete_record("workout", workout["id"])
    key = ("workouts", workout["id"])

    def crash(self, context):
        raise RuntimeError("killed before deleted_records")
        yield  # a generator, like the real one

    with monkeypatch.context() as patch:
        patch.setattr(DeletedRecordsStream, "get_records", crash)
        crashed = run_tap(config, state=baseline.state)
    assert crashed.error is not None
    assert crashed.records["deleted_records"] == []
    resumed = run_tap(config, state=copy.deepcopy(crashed.states[-1]))  # the tap updates its state in place
    assert set(deleted(resumed)) == {key}

    for result in (crashed, resumed):
        emitted = False
        for message in result.messages:
            if message["type"] == "RECORD" and message["stream"] == "deleted_records":
                emitted = emitted or (message["record"]["stream"], message["record"]["id"]) == key
            if message["type"] == "STATE":
                state = message["value"]
                seen = partition(state, "workouts").get("reconciliation", {}).get("seen", {})
                pending = (
                    partition(state, "deleted_records").get("pending", [])
                    if "deleted_records" in state["bookmarks"]
                    else []
                )
                assert workout["id"] in seen or key in {(p["stream"], p["id"]) for p in pending} or emitted, (
                    "a STATE message forgot the deletion before it was emitted"
                )


def test_webhook_events_past_the_cursor_are_consumed_once(sandbox, config, baseline):
    user_id = sandbox.athletes[0].user_id
    old_workout = sandbox.edit_workout(athlete=0, days_ago=30)  # outside the 14-day window
    old_sleep = sandbox.record_near("sleep", athlete=0, days_ago=40)
    sandbox.delete_record("sleep", old_sleep["id"])
    received = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
    events = [
        webhook(sandbox, "workout.updated", old_workout["id"]),
        webhook(sandbox, "sleep.deleted", old_sleep["id"]),
        webhook(sandbox, "recovery.deleted", old_sleep["id"]),
    ]
    store_events(config, *events, received_at=received)
    sandbox.clear_log()

    second = run_tap(config, state=baseline.state)

    assert second.error is None
    assert old_workout in second.served("workouts")
    assert lookups(sandbox) == [f"/v2/activity/workout/{old_workout['id']}"]
    rows = deleted(second)
    assert set(rows) == {("sleeps", old_sleep["id"]), ("recoveries", old_sleep["id"])}
    assert rows[("sleeps", old_sleep["id"])] == {
        "stream": "sleeps",
        "id": old_sleep["id"],
        "user_id": user_id,
        "deleted_at": "2025-06-01T12:00:00.000Z",
        "detected_by": "webhook",
        "trace_id": events[1].trace_id,
    }
    for stream in ("workouts", "deleted_records"):
        assert partition(second.state, stream)["webhook_cursor"] == 3

    sandbox.clear_log()
    third = run_tap(config, state=second.state)
    assert third.records["deleted_records"] == []
    assert lookups(sandbox) == []


def test_a_recovery_update_is_fetched_through_its_sleep(sandbox, config, baseline):
    sleep = sandbox.record_near("sleep", athlete=0, days_ago=30)
    store_events(config, webhook(sandbox, "recovery.updated", sleep["id"]))
    sandbox.clear_log()
    second = run_tap(config, state=baseline.state)
    assert sleep["cycle_id"] in {r["cycle_id"] for r in second.records["recoveries"]}
    assert lookups(sandbox) == [
        f"/v2/activity/sleep/{sleep['id']}",
        f"/v2/cycle/{sleep['cycle_id']}/recovery",
    ]

    # With the sleep's own event first, its cycle is known and the recovery costs one call.
    other = sandbox.record_near("sleep", athlete=0, days_ago=33)
    store_events(
        config,
        webhook(sandbox, "sleep.updated", other["id"]),
        webhook(sandbox, "recovery.updated", other["id"]),
    )
    sandbox.clear_log()
    third = run_tap(config, state=second.state)
    assert sleep["cycle_id"] not in {r["cycle_id"] for r in third.records["recoveries"]}
    assert lookups(sandbox) == [
        f"/v2/activity/sleep/{other['id']}",
        f"/v2/cycle/{other['cycle_id']}/recovery",
    ]


def test_a_webhook_deletion_spares_the_confirmation(sandbox, config, baseline):
    workout = sandbox.record_near("workout", athlete=0, days_ago=3)
    sandbox.delete_record("workout", workout["id"])
    event = webhook(sandbox, "workout.deleted", workout["id"])
    store_events(config, event)
    sandbox.clear_log()
    second = run_tap(config, state=baseline.state)
    assert lookups(sandbox) == []
    ((key, row),) = deleted(second).items()
    assert key == ("workouts", workout["id"])
    assert (row["detected_by"], row["trace_id"]) == ("webhook", event.trace_id)
    assert workout["id"] not in partition(second.state, "workouts")["reconciliation"]["seen"]


def test_events_for_unknown_athletes_are_kept_and_reported(sandbox, config, baseline, caplog):
    stranger = webhook(sandbox, "sleep.deleted", str(uuid.uuid4()), user_id=424242)
    store_events(config, stranger)
    caplog.set_level(logging.WARNING, logger="tap-whoop")
    second = run_tap(config, state=baseline.state)
    assert second.error is None
    assert second.records["deleted_records"] == []
    assert "user_id 424242 (1 event(s)" in caplog.text
    log = open_event_log(config["token_store"], config["client_id"])
    assert [s.event for s in log.read()] == [stranger]  # kept, for when they enroll


def test_an_updated_event_for_a_record_gone_since_is_skipped(sandbox, config, baseline, caplog):
    workout = sandbox.record_near("workout", athlete=0, days_ago=30)
    sandbox.delete_record("workout", workout["id"])
    store_events(config, webhook(sandbox, "workout.updated", workout["id"]))
    caplog.set_level(logging.INFO, logger="tap-whoop")
    second = run_tap(config, state=baseline.state)
    assert second.error is None
    assert second.records["deleted_records"] == []  # only a *.deleted webhook or reconciliation says so
    assert "no longer exists" in caplog.text
    assert partition(second.state, "workouts")["webhook_cursor"] == 1


def test_a_failed_event_fetch_is_tried_again_next_run(sandbox, config, baseline):
    workout = sandbox.record_near("workout", athlete=0, days_ago=30)
    store_events(config, webhook(sandbox, "workout.updated", workout["id"]))
    sandbox.inject_fault("503", path_prefix=f"/developer/v2/activity/workout/{workout['id']}", count=100)
    second = run_tap(config, state=baseline.state)
    assert second.error is None
    assert partition(second.state, "workouts")["webhook_cursor"] == 0
    sandbox.clear_faults()
    third = run_tap(config, state=second.state)
    assert workout["id"] in {r["id"] for r in third.records["workouts"]}
    assert partition(third.state, "workouts")["webhook_cursor"] == 1
