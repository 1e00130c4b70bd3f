"""What tests may rely on in the generated history, on every day of 2026-2030.

Each day's records are drawn from that date's seed, so what lies at a given age changes with the calendar day.
These tests make a sandbox for each day themselves (a fixed `now`): they read no clock, and the date lane
(make test-dates) need not run them again at every date it tries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from whoop_sandbox import Sandbox
from whoop_sandbox.data import SCORE_STATES


def test_record_near_gives_the_state_asked_for_on_every_day():
    """Which record lies nearest an age changes with the calendar day; its state must not: every day of
    2026-2030 at the ages the suites pick from, each kind in the state asked for."""
    start = datetime(2026, 1, 1, 13, 30, tzinfo=UTC)
    for day in range(0, 5 * 365):
        sb = Sandbox(seed=7, days=10, athletes=1, rate_limits=[], now=start + timedelta(days=day))
        for kind in ("cycle", "sleep", "recovery", "workout"):
            for days_ago in (2, 4, 8):
                record = sb.record_near(kind, days_ago=days_ago)
                assert record["score_state"] == "SCORED", (kind, day, days_ago)
                assert "score" in record, (kind, day, days_ago)
            assert sb.record_near(kind, days_ago=4, state=None)["score_state"] in SCORE_STATES
    with pytest.raises(ValueError, match="score state"):
        sb.record_near("workout", state="scored")


def test_workouts_planted_at_ages_are_picked_there_on_every_day():
    """A third of generated days have no workout, so without `workouts_at` the workout nearest "2 days ago"
    can be the one nearest "5 days ago", or lie a week off. With it, every day of 2026-2030 at any hour: each
    pick lies within half a day of its age, and each age has a workout of its own."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ages = (2, 3, 4, 5)
    for day in range(0, 5 * 365):
        now = start + timedelta(days=day, hours=day * 7 % 24, minutes=day % 60)
        sb = Sandbox(seed=11, days=8, athletes=1, rate_limits=[], now=now, workouts_at=ages)
        picks = [sb.record_near("workout", days_ago=age) for age in ages]
        for age, pick in zip(ages, picks, strict=True):
            started = datetime.fromisoformat(pick["start"])
            assert abs(started - (now - timedelta(days=age))) <= timedelta(hours=12), (now, age)
        assert len({p["id"] for p in picks}) == len(ages), now
    with pytest.raises(ValueError, match="at least 2 days"):
        Sandbox(days=3, athletes=1, workouts_at=(1,))
