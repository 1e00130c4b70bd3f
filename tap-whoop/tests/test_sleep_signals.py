"""`sleep_signals`: one stream call per new or edited sleep, none for sleeps re-read unchanged, the
`types` setting passed through, a deleted sleep's 404 dropped, an interrupted run finished by the next,
sleeps named by webhooks followed, and the history's signals after everyone's fresh data."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re

import pytest
from singer_sdk.exceptions import ConfigValidationError
from tap_whoop.streams import signals
from tap_whoop.streams.endpoints import SleepSignalsStream
from tap_whoop.tap import TapWhoop
from whoop_sandbox.signals import parse_types, sleep_stream

from .conftest import START, enroll, partitions, run_tap
from .test_deletions import partition, store_events, webhook

STREAM_CALL = re.compile(r"/developer/v2/activity/sleep/([0-9a-f-]{36})/stream$")


@pytest.fixture
def sandbox(whoop_sandbox_factory):
    return whoop_sandbox_factory(seed=11, days=45, athletes=1, rate_limits=[])


def stream_calls(sandbox) -> list[str]:
    """The sleep ids whose streams were asked for, in request order."""
    return [m[1] for e in sandbox.request_log if (m := STREAM_CALL.match(e["path"]))]


def by_sleep(result) -> dict[str, dict]:
    return {r["sleep_id"]: r for r in result.records["sleep_signals"]}


def test_every_sleep_once_and_unchanged_sleeps_never_again(sandbox, config, baseline):
    sleeps = {r["id"]: r for r in baseline.records["sleeps"] if r["score_state"] != "PENDING_SCORE"}
    records = by_sleep(baseline)
    assert set(records) == set(sleeps)
    assert len(baseline.records["sleep_signals"]) == len(sleeps), "a night at 60 s is one record"
    for sleep_id, record in records.items():
        assert record["sleep_updated_at"] == sleeps[sleep_id]["updated_at"]
        assert record["user_id"] == sandbox.athletes[0].user_id
        assert record["sample_count"] == len(record["stream"]) > 0
        assert (record["part"], record["parts"]) == (0, 1)
        assert record["stream"][0]["timestamp"][:19] == sleeps[sleep_id]["start"][:19]
        assert set(record["stream"][0]) == {
            "timestamp", "hr", "skin_temp", "board_temp", "battery_temp", "is_sleeping", "is_charging",
        }  # fmt: skip
    sandbox.clear_log()
    again = run_tap(config, state=baseline.state)
    assert again.error is None
    assert again.records["sleeps"], "the lookback window re-read its sleeps"
    assert stream_calls(sandbox) == []
    assert again.records["sleep_signals"] == []


def test_a_sleep_waits_for_its_score_then_costs_one_call(sandbox, config, baseline):
    pending = [r["id"] for r in baseline.records["sleeps"] if r["score_state"] == "PENDING_SCORE"]
    assert pending, "the sandbox's newest sleep is being scored"
    assert not set(pending) & set(by_sleep(baseline))
    sandbox.rescore_pending()
    sandbox.clear_log()
    again = run_tap(config, state=baseline.state)
    assert again.error is None
    assert sorted(stream_calls(sandbox)) == sorted(pending)


def test_an_edited_sleep_is_fetched_again(sandbox, config, baseline):
    edited = sandbox.edit_sleep(athlete=0, days_ago=5)
    sandbox.clear_log()
    again = run_tap(config, state=baseline.state)
    assert again.error is None
    assert stream_calls(sandbox) == [edited["id"]]
    (record,) = again.records["sleep_signals"]
    assert record["sleep_updated_at"] == edited["updated_at"]
    assert record["stream"][-1]["timestamp"] > by_sleep(baseline)[edited["id"]]["stream"][-1]["timestamp"]


def test_a_long_stream_comes_in_parts_and_an_edit_brings_all_of_them_anew(sandbox, config, monkeypatch):
    """A stream of more than SAMPLES_PER_RECORD samples (a night at 1 s: ~28,800) is split into records a
    loader takes (target-duckdb refuses a CSV line over 2 MiB): every sample once, in order, each part
    naming how many the version has, so a warehouse drops an older version's extra parts."""
    monkeypatch.setattr(signals, "SAMPLES_PER_RECORD", 100)
    first = run_tap(config)
    assert first.error is None
    edited = sandbox.edit_sleep(athlete=0, days_ago=5)
    again = run_tap(config, state=first.state)
    assert again.error is None
    for result, sleep_id in ((first, edited["id"]), (again, edited["id"])):
        parts = [r for r in result.records["sleep_signals"] if r["sleep_id"] == sleep_id]
        sleep = sandbox.find("sleep", sleep_id)
        served = json.loads(sleep_stream(sleep, sandbox.signal_interval, parse_types(None)))["stream"]
        assert len(parts) > 1
        assert [(r["part"], r["parts"]) for r in parts] == [(n, len(parts)) for n in range(len(parts))]
        assert all(len(r["stream"]) == r["sample_count"] <= 100 for r in parts)
        assert len({r["sleep_updated_at"] for r in parts}) == 1
        if result is again:  # the edited version, whole and in order
            assert [s for r in parts for s in r["stream"]] == served
    assert {r["sleep_id"] for r in again.records["sleep_signals"]} == {edited["id"]}


def test_the_state_remembers_only_what_the_window_can_reread(sandbox, config, baseline):
    fetched = partition(baseline.state, "sleep_signals")[signals.FETCHED]
    bookmark = dt.datetime.fromisoformat(partition(baseline.state, "sleeps")["replication_key_value"])
    oldest = bookmark - dt.timedelta(days=config.get("lookback_days", 14)) - signals.KEEP_MARGIN
    assert 0 < len(fetched) < len(baseline.records["sleeps"])
    assert all(dt.datetime.fromisoformat(start) >= oldest for _, start in fetched.values())
    assert signals.PENDING not in partition(baseline.state, "sleep_signals")


def test_off_makes_no_stream_calls(sandbox, make_config):
    result = run_tap(make_config(sandbox, start_date=START, sleep_signals=False))
    assert result.error is None
    assert result.records["sleeps"]
    assert stream_calls(sandbox) == []
    assert result.records["sleep_signals"] == []


def test_types_are_passed_through_and_unknown_ones_refused(sandbox, make_config):
    config = make_config(sandbox, start_date=START, sleep_signal_types=["hr", "sleep_classification"])
    result = run_tap(config)
    assert result.error is None
    asked = [e["params"] for e in sandbox.request_log if STREAM_CALL.match(e["path"])]
    assert asked
    assert all(p == {"types": "hr,sleep_classification"} for p in asked)
    samples = [s for r in result.records["sleep_signals"] for s in r["stream"]]
    assert {frozenset(s) for s in samples} == {frozenset({"timestamp", "hr", "is_sleeping"})}

    with pytest.raises(ConfigValidationError) as info:
        TapWhoop.complete_config({**config, "sleep_signal_types": ["hr", "heart_rate"]})
    (message,) = info.value.errors
    assert "'heart_rate'" in message
    assert "hr, skin_temp, board_temp, battery_temp, sleep_classification, charging_status" in message


def test_an_interrupted_run_is_finished_by_the_next_and_a_deleted_sleep_dropped(sandbox, config, monkeypatch):
    real = SleepSignalsStream.fetch_one
    calls = []

    def fail_after_three(self, path, context, params=None):
        calls.append(path)
        if len(calls) > 3:
            raise RuntimeError("killed while fetching signals")
        return real(self, path, context, params)

    with monkeypatch.context() as patch:
        patch.setattr(SleepSignalsStream, "fetch_one", fail_after_three)
        crashed = run_tap(config)
    assert crashed.error is not None
    done = set(by_sleep(crashed))
    assert len(done) == 3
    queued = [e["id"] for e in partition(crashed.state, "sleep_signals")[signals.PENDING]]
    assert queued
    assert not done & set(queued)
    gone = queued[-1]
    sandbox.delete_record("sleep", gone)
    sandbox.clear_log()

    resumed = run_tap(config, state=copy.deepcopy(crashed.state))
    assert resumed.error is None
    asked = stream_calls(sandbox)
    assert len(asked) == len(set(asked)), "one call per sleep"
    assert not done & set(asked), "what the interrupted run wrote is not fetched again"
    assert gone in asked, "the deleted sleep was still queued"
    assert gone not in by_sleep(resumed), "its 404 is dropped"
    sleeps = {
        r["id"]
        for r in crashed.records["sleeps"] + resumed.records["sleeps"]
        if r["score_state"] != "PENDING_SCORE"
    } - {gone}
    assert done | set(by_sleep(resumed)) == sleeps
    assert signals.PENDING not in partition(resumed.state, "sleep_signals")


def test_a_sleep_named_by_a_webhook_brings_its_signals(sandbox, config, baseline):
    old = sandbox.edit_sleep(athlete=0, days_ago=30)  # outside the 14-day lookback window
    store_events(config, webhook(sandbox, "sleep.updated", old["id"]))
    sandbox.clear_log()
    again = run_tap(config, state=baseline.state)
    assert again.error is None
    assert stream_calls(sandbox) == [old["id"]]
    assert by_sleep(again)[old["id"]]["sleep_updated_at"] == old["updated_at"]


def test_history_signals_come_after_everyones_fresh_data(whoop_sandbox_factory, make_config):
    sandbox = whoop_sandbox_factory(seed=12, days=40, athletes=2, rate_limits=[])
    config = make_config(sandbox, start_date=START)
    config.pop("refresh_token")
    users = enroll(sandbox, config, [0, 1])
    result = run_tap(config)
    assert result.error is None
    log = sandbox.request_log
    heads = [i for i, e in enumerate(log) if e["path"].endswith("/v2/activity/sleep")][: len(users)]
    head_start = dt.datetime.fromisoformat(log[heads[0]]["params"]["start"])
    ends = {r["id"]: dt.datetime.fromisoformat(r["end"]) for r in result.records["sleeps"]}
    calls = [(i, m[1]) for i, e in enumerate(log) if (m := STREAM_CALL.match(e["path"]))]
    fresh = [i for i, sleep_id in calls if ends[sleep_id] >= head_start]  # the heads returned these
    history = [i for i, sleep_id in calls if ends[sleep_id] < head_start]
    assert fresh
    assert history
    assert max(heads) < min(fresh), "fresh signals after every athlete's incremental reads"
    assert max(fresh) < min(history), "history signals after everyone's fresh signals"
    assert {e["user_id"] for e in log if STREAM_CALL.match(e["path"])} == set(users)
    for user_id in users:
        assert signals.PENDING not in partitions(result.state, "sleep_signals")[user_id]


def test_a_short_daily_budget_pauses_history_signals_not_fresh_ones(
    whoop_sandbox_factory, make_config, caplog
):
    caplog.set_level("INFO", logger="tap-whoop")
    sandbox = whoop_sandbox_factory(seed=3, days=60, athletes=1, rate_limits=[(1000, 60), (60, 3600)])
    config = make_config(sandbox, start_date=START)
    result = run_tap(config)
    assert result.error is None
    state = partition(result.state, "sleep_signals")
    assert "History paused for athletes" in caplog.text
    # Every sleep of the head has its signals; the history turn's sleeps wait in the queue for a later run.
    assert by_sleep(result)
    assert not signals.due(state, history=False)
    waiting = {e["id"] for e in signals.due(state, history=True)}
    assert waiting
    assert not waiting & set(by_sleep(result))
    assert waiting <= {r["id"] for r in result.records["sleeps"]}
