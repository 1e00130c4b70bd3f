"""The injectable clock: one "now" for the history, tokens, rate windows, changes and the request log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
from whoop_sandbox import ManualClock, RealClock, Sandbox

# Time arithmetic: the date lane (make test-dates) runs this module at every date it tries.
pytestmark = pytest.mark.clock

# A few minutes before Europe's clocks went back (01:00 UTC): nothing in the sandbox may care.
NOW = datetime(2026, 10, 25, 0, 57, 0, tzinfo=UTC)


def test_real_clock_starts_at_now_and_advances():
    clock = RealClock(NOW)
    first = clock()
    assert NOW.timestamp() <= first < NOW.timestamp() + 5
    assert clock() >= first
    assert abs(RealClock()() - datetime.now(UTC).timestamp()) < 5


def test_manual_clock_moves_only_forward_when_told():
    clock = ManualClock(NOW)
    assert clock() == clock() == NOW.timestamp()
    assert clock.advance(timedelta(minutes=5)) == NOW.timestamp() + 300
    clock.set(NOW + timedelta(hours=1))
    assert clock() == NOW.timestamp() + 3600
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="forward"):
        clock.set(NOW)
    with pytest.raises(ValueError, match="aware"):
        ManualClock(datetime(2026, 1, 1))


def test_history_ends_at_the_clock_when_only_a_clock_is_given():
    by_clock = Sandbox(seed=2, days=10, athletes=1, clock=ManualClock(NOW))
    by_now = Sandbox(seed=2, days=10, athletes=1, now=NOW)
    for kind in ("cycle", "sleep", "recovery", "workout"):
        assert [r.body for r in by_clock.athletes[0].records[kind].items] == [
            r.body for r in by_now.athletes[0].records[kind].items
        ]
    assert by_clock.now() == NOW


def test_changes_log_and_info_read_the_clock(whoop_sandbox_factory, make_client):
    clock = ManualClock(NOW)
    sandbox = whoop_sandbox_factory(days=20, rate_limits=[], clock=clock)
    clock.advance(timedelta(days=3))
    client = make_client(sandbox)
    workout = sandbox.add_past_workout(days_ago=4)
    assert workout["updated_at"] == "2026-10-28T00:57:00.000Z"
    # Collections end at the sandbox's now by default: the workout logged "today" is served.
    assert workout["id"] in {w["id"] for w in client.all_records("/v2/activity/workout")}
    assert sandbox.request_log[-1]["ts"] == NOW.timestamp() + 3 * 86400
    info = requests.get(sandbox.base_url + "/_sandbox/info", timeout=10).json()
    assert info["now"] == int((NOW.timestamp() + 3 * 86400) * 1000)


def test_an_athletes_zone_changes_for_new_records_only(whoop_sandbox_factory):
    """A daylight-saving change (or a trip): old records keep their offset, new ones carry the new one."""
    sandbox = whoop_sandbox_factory(seed=0, days=10, athletes=1, rate_limits=[], clock=ManualClock(NOW))
    athlete = sandbox.athletes[0]
    assert athlete.timezone_offset == "-05:00"
    assert sandbox.set_timezone_offset(0, "-04:00") == "-05:00"
    closed, opened = sandbox.start_new_cycle(0)
    assert closed["timezone_offset"] == "-05:00"
    assert opened["timezone_offset"] == "-04:00"
    assert sandbox.add_past_workout(0, days_ago=2)["timezone_offset"] == "-04:00"
    url = sandbox.base_url + "/_sandbox/set_timezone_offset"
    control = requests.post(url, json={"athlete": 0, "offset": "+05:45"}, timeout=10)
    assert control.json() == {"result": "-04:00"}
    for bad in ("EST", "+5:00", "+15:00", "-04:60"):
        with pytest.raises(ValueError, match="offset"):
            sandbox.set_timezone_offset(0, bad)
