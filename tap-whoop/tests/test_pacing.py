"""Rate limits: paced at a scaled-down limit without a single 429; 429s from others waited out; daily stop."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from tap_whoop.streams.base import WhoopStream
from tap_whoop.tap import TapWhoop

from .conftest import API_ROOT, COLLECTIONS, PATHS, bookmark, mint_access_token, run_tap

# Time arithmetic: the date lane (make test-dates) runs this module at every date it tries.
pytestmark = pytest.mark.clock

START = "2020-01-01T00:00:00Z"


@pytest.mark.slow
def test_backfill_at_a_scaled_down_limit_draws_no_429(whoop_sandbox_factory, make_config, tap_logs):
    sandbox = whoop_sandbox_factory(seed=3, days=60, athletes=1, rate_limits=[(10, 2)])
    result = run_tap(make_config(sandbox, start_date=START))
    assert result.error is None
    statuses = [r["status"] for r in sandbox.request_log if r["path"].startswith(API_ROOT + "/")]
    assert len(statuses) > 10, "more requests than one window allows"
    assert 429 not in statuses
    assert all(result.records[stream] for stream in COLLECTIONS)
    assert "Rate limit reached; pausing" in tap_logs.text
    # Long backfills say how far they got and how long is left at the current limit.
    progress = re.compile(
        r"cycles progress: \d+ records in \d+ pages; reached start \S+Z "
        r"\(requested 2020-01-01T00:00:00\.000Z\); ~\d+:\d\d:\d\d left at the rate limit"
    )
    assert progress.search(tap_logs.text)
    assert re.search(r"cycles done: \d+ records in \d+ pages", tap_logs.text)


@pytest.mark.slow
def test_a_429_caused_by_another_client_is_waited_out(whoop_sandbox_factory, make_config):
    sandbox = whoop_sandbox_factory(seed=3, days=20, athletes=1, rate_limits=[(5, 2)])
    config = make_config(sandbox, start_date=START)
    # Someone else using the same app spends the whole window first.
    token = mint_access_token(sandbox)
    for _ in range(5):
        url = sandbox.api_url + PATHS["profile"]
        requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
    sandbox.clear_log()
    result = run_tap(config)
    assert result.error is None
    statuses = [r["status"] for r in sandbox.request_log if r["path"].startswith(API_ROOT + "/")]
    assert statuses[0] == 429
    assert statuses.count(429) == 1
    assert all(result.records[stream] for stream in COLLECTIONS)


def test_short_daily_budget_pauses_history_first_and_a_spent_one_stops_cleanly(
    whoop_sandbox_factory, make_config, caplog
):
    caplog.set_level(logging.INFO, logger="tap-whoop")
    sandbox = whoop_sandbox_factory(seed=3, days=60, athletes=1, rate_limits=[(100, 60), (6, 3600)])
    # Six calls a day hold the list calls only: the fresh sleeps' signals would spend the day before history
    # is even asked (test_sleep_signals.py has the signals' own share of a short budget).
    config = make_config(sandbox, start_date=START, sleep_signals=False)
    first = run_tap(config)
    assert first.error is None
    statuses = [r["status"] for r in sandbox.request_log if r["path"].startswith(API_ROOT + "/")]
    assert statuses == [200] * 5  # whose tokens (profile), the four heads; the last call is kept back
    assert "History paused for athletes" in caplog.text
    for stream in COLLECTIONS:
        assert bookmark(first.state, stream) is not None
        [partition] = first.state["bookmarks"][stream]["partitions"]
        assert "backfill_before" in partition

    # The next run meets WHOOP's own refusal after one call: it stops cleanly, nothing claimed in vain.
    sandbox.clear_log()
    caplog.clear()
    second = run_tap(config, state=first.state)
    assert second.error is None, "a spent budget is a clean stop, not a failure"
    statuses = [r["status"] for r in sandbox.request_log if r["path"].startswith(API_ROOT + "/")]
    assert statuses == [200]
    assert "daily request budget is spent" in caplog.text
    assert "run again after" in caplog.text
    assert bookmark(second.state, "cycles") >= bookmark(first.state, "cycles")
    assert second.state["bookmarks"]["sleeps"] == first.state["bookmarks"]["sleeps"]


@pytest.mark.slow
def test_the_console_script_stops_cleanly_on_a_spent_budget(whoop_sandbox_factory, make_config, tmp_path):
    """The SDK declares Tap.sync_all final; the tap overrides it anyway (tap.py says why): the SDK's own CLI
    must still reach the override."""
    sandbox = whoop_sandbox_factory(seed=3, days=60, athletes=1, rate_limits=[(100, 60), (6, 3600)])
    config = tmp_path / "config.json"
    config.write_text(json.dumps(make_config(sandbox, start_date=START)))
    token = mint_access_token(sandbox)  # another client of the app spends the whole budget first
    for _ in range(6):
        url = sandbox.api_url + "/v2/user/profile/basic"
        requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
    tap = Path(sys.executable).with_name("tap-whoop")
    run = subprocess.run(
        [str(tap), "--config", str(config)], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "daily request budget is spent" in run.stderr
    messages = [json.loads(line) for line in run.stdout.splitlines()]
    assert messages[-1]["type"] == "STATE"


def test_streams_share_one_pacer_and_each_athletes_authenticator(whoop_sandbox_factory, make_config):
    sandbox = whoop_sandbox_factory(seed=3, days=10, athletes=1)
    tap = TapWhoop(config=make_config(sandbox), parse_env_config=False)
    [context] = tap.athlete_contexts()
    calling = [stream for stream in tap.streams.values() if isinstance(stream, WhoopStream)]
    assert len(calling) == len(tap.streams) - 2  # all but deleted_records and athletes, which call no one
    pacers = {id(stream.pacer) for stream in calling}
    assert len(pacers) == 1
    authenticators = set()
    for stream in calling:
        if stream.per_athlete:
            stream._partition_context = context
            authenticators.add(id(stream.authenticator))
    assert len(authenticators) == 1
