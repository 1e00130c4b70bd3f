"""Incremental correctness: lookback catches late changes, state never claims more than was read."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from tap_whoop.streams.incremental import WhoopCollectionStream
from tap_whoop.timestamps import format_datetime, parse_datetime

from .conftest import COLLECTION_PATHS, COLLECTIONS, api_requests, bookmark, run_tap

# Time arithmetic: the date lane (make test-dates) runs this module at every date it tries.
pytestmark = pytest.mark.clock

START = "2020-01-01T00:00:00Z"


@pytest.fixture
def sandbox(whoop_sandbox_factory):
    return whoop_sandbox_factory(seed=11, days=45, athletes=1, rate_limits=[])


def _first_start_param(sb, stream: str) -> str:
    params = api_requests(sb, COLLECTION_PATHS[stream])[0]["params"]
    if isinstance(params, str):
        params = {k: v[0] for k, v in parse_qs(params).items()}
    value = params["start"]
    return value[0] if isinstance(value, list) else value


def _ids(records: list[dict], stream: str) -> set:
    return {r["cycle_id" if stream == "recoveries" else "id"] for r in records}


def _key(record: dict) -> object:
    return record.get("id", record.get("cycle_id"))


def test_next_run_starts_lookback_days_before_the_bookmark(sandbox, make_config):
    first = run_tap(make_config(sandbox, start_date=START))
    assert first.error is None
    sandbox.clear_log()
    second = run_tap(make_config(sandbox, start_date=START, lookback_days=3), state=first.state)
    assert second.error is None
    for stream in COLLECTIONS:
        expected = parse_datetime(bookmark(first.state, stream)) - dt.timedelta(days=3)
        assert _first_start_param(sandbox, stream) == format_datetime(expected)
        # Re-reading the lookback window is the price; the bookmark never goes backwards.
        assert bookmark(second.state, stream) >= bookmark(first.state, stream)


def test_late_changes_are_picked_up_on_the_next_run(sandbox, make_config):
    first = run_tap(make_config(sandbox, start_date=START))
    assert first.error is None

    rescored = sandbox.rescore_pending()
    workout = sandbox.add_past_workout(athlete=0, days_ago=10)
    sleep = sandbox.edit_sleep(athlete=0, days_ago=5)

    second = run_tap(make_config(sandbox, start_date=START), state=first.state)
    assert second.error is None
    new_workouts = {r["id"]: r for r in second.records["workouts"]}
    assert _key(workout) in new_workouts, "a workout logged 10 days in the past was skipped"
    new_sleeps = {r["id"]: r for r in second.records["sleeps"]}
    assert new_sleeps[_key(sleep)]["updated_at"] == sleep["updated_at"]
    assert (
        new_sleeps[_key(sleep)]["updated_at"]
        > {r["id"]: r for r in first.records["sleeps"]}[_key(sleep)]["updated_at"]
    )
    rescored = rescored if isinstance(rescored, list) else [rescored]
    assert rescored, "the sandbox had pending scores to settle"
    seen = {_key(r) for stream in COLLECTIONS for r in second.records[stream] if r["score_state"] == "SCORED"}
    assert {_key(r) for r in rescored} <= seen


def test_interrupted_run_loses_nothing(sandbox, make_config, monkeypatch):
    """The run dies after a page of cycles: state keeps the old bookmark; the next run reads it all."""
    config = make_config(sandbox, start_date=START)
    baseline = run_tap(config)
    expected = _ids(baseline.records["cycles"], "cycles")
    assert len(expected) > 25, "needs more than one page"

    sandbox.start_new_cycle(athlete=0)
    # A long lookback, so the catch-up run needs more than one page and can be cut between them.
    lookback = 40
    parse = WhoopCollectionStream.parse_response

    def fail_after_first_page(self, response):
        records = parse(self, response)
        if self.name == "cycles" and self._progress.pages == 1:
            sandbox.inject_fault("503", path_prefix=COLLECTION_PATHS["cycles"], count=100)
        return records

    config = make_config(sandbox, start_date=START, lookback_days=lookback)
    with monkeypatch.context() as patch:
        patch.setattr(WhoopCollectionStream, "parse_response", fail_after_first_page)
        interrupted = run_tap(config, state=baseline.state)
    assert interrupted.error is not None
    assert "cycles" in str(interrupted.error)
    for state in interrupted.states:
        # No STATE message ever claims the unread pages: the committed bookmark stays where it was.
        assert bookmark(state, "cycles") == bookmark(baseline.state, "cycles")

    sandbox.clear_faults()
    sandbox.clear_log()
    config = make_config(sandbox, start_date=START, lookback_days=lookback)
    resumed = run_tap(config, state=interrupted.state)
    assert resumed.error is None
    assert _first_start_param(sandbox, "cycles") == format_datetime(
        parse_datetime(bookmark(baseline.state, "cycles")) - dt.timedelta(days=lookback)
    )
    latest = max(resumed.records["cycles"], key=lambda r: r["start"])
    assert latest["id"] not in expected, "the cycle started after the interruption was read"
    assert bookmark(resumed.state, "cycles") == max(r["updated_at"] for r in resumed.records["cycles"])


def test_interrupted_history_resumes_from_its_cursor(sandbox, make_config, monkeypatch):
    """A history turn cut short keeps its cursor where the last complete turn left it; nothing is lost."""
    parse = WhoopCollectionStream.parse_response

    def fail_after_first_history_page(self, response):
        records = parse(self, response)
        if self.name == "cycles" and self.turn.is_backfill and self._progress.pages == 1:
            sandbox.inject_fault("500", path_prefix=COLLECTION_PATHS["cycles"], count=100)
        return records

    with monkeypatch.context() as patch:
        patch.setattr(WhoopCollectionStream, "parse_response", fail_after_first_history_page)
        interrupted = run_tap(make_config(sandbox, start_date=START))
    # The athlete's fresh data landed, so the run succeeded; the history of cycles waits for the next one.
    assert interrupted.error is None
    [partition] = interrupted.state["bookmarks"]["cycles"]["partitions"]
    head = api_requests(sandbox, COLLECTION_PATHS["cycles"])[0]["params"]["start"]
    assert partition["backfill_before"] == head, "the failed turn did not move the cursor"
    assert bookmark(interrupted.state, "cycles") is not None
    sandbox.clear_faults()

    resumed = run_tap(make_config(sandbox, start_date=START), state=interrupted.state)
    assert resumed.error is None
    [partition] = resumed.state["bookmarks"]["cycles"]["partitions"]
    assert "backfill_before" not in partition
    every = _ids(interrupted.records["cycles"], "cycles") | _ids(resumed.records["cycles"], "cycles")
    assert every == {c.key for c in sandbox.athletes[0].records["cycle"].items}


@pytest.mark.slow
def test_killed_process_resumes_from_its_last_state_message(sandbox, make_config, tmp_path):
    """SIGKILL while a stream is mid-request: the last STATE line on stdout is a safe place to resume from."""
    config = make_config(sandbox, start_date=START)
    baseline = run_tap(make_config(sandbox, start_date=START))
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    # sleeps' first page hangs, so the process is killed with cycles done and sleeps in flight.
    sandbox.inject_fault("slow", path_prefix=COLLECTION_PATHS["sleeps"], count=1, delay=30)
    out_path = tmp_path / "out.jsonl"
    with out_path.open("w") as out:
        tap = subprocess.Popen(
            [str(Path(sys.executable).with_name("tap-whoop")), "--config", str(config_path)],
            stdout=out,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while "replication_key_value" not in out_path.read_text():  # cycles, the first stream, is done
                assert time.monotonic() < deadline, "the tap never finished cycles"
                time.sleep(0.05)
            time.sleep(0.3)  # now waiting on the hung sleeps page
        finally:
            tap.kill()
            tap.wait(timeout=10)
    lines = out_path.read_text().splitlines()
    last = [json.loads(line)["value"] for line in lines if '"type":"STATE"' in line][-1]
    assert bookmark(last, "cycles") is not None
    assert bookmark(last, "sleeps") is None

    sandbox.clear_faults()
    resumed = run_tap(config, state=last)
    assert resumed.error is None
    assert _ids(resumed.records["sleeps"], "sleeps") == _ids(baseline.records["sleeps"], "sleeps")
