"""The rate-limit pacer in isolation, on a fake clock."""

from __future__ import annotations

import logging

import pytest
from tap_whoop.client.pacing import RateLimitBudgetExhausted, RateLimitPacer, RatePolicy, parse_policies

WHOOP_LIMIT = "100, 100;window=60, 10000;window=86400"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def pacer(clock):
    logger = logging.getLogger("test")
    return RateLimitPacer(logger, reset_margin_seconds=0.5, clock=clock, sleep=clock.sleep)


def headers(remaining: int, reset: int, limit: str = WHOOP_LIMIT) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": limit,
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(reset),
    }


def test_parse_whoop_limit_header():
    assert parse_policies(WHOOP_LIMIT) == [RatePolicy(100, 60.0), RatePolicy(10000, 86400.0)]
    assert parse_policies("10") == []


def test_spends_the_quota_then_sleeps_until_the_reset(pacer, clock):
    pacer.wait_turn()  # nothing known yet: go
    pacer.observe(200, headers(remaining=2, reset=30))
    pacer.wait_turn()
    pacer.wait_turn()
    assert clock.sleeps == []
    pacer.wait_turn()  # the third request would exceed the two remaining
    assert clock.sleeps == [pytest.approx(30.5)]
    assert pacer.sustained_rate() == pytest.approx(100 / 60)


def test_429_waits_for_the_reset_or_retry_after(pacer, clock):
    pacer.observe(429, {"Retry-After": "7"})
    pacer.wait_turn()
    assert clock.sleeps == [pytest.approx(7.5)]


def test_a_spent_daily_quota_stops_instead_of_sleeping(pacer, clock):
    pacer.observe(200, headers(remaining=0, reset=5 * 3600))
    with pytest.raises(RateLimitBudgetExhausted) as info:
        pacer.wait_turn()
    assert clock.sleeps == []
    assert "budget is spent until" in str(info.value)


def test_no_headers_means_no_pacing(pacer, clock):
    for _ in range(1000):
        pacer.observe(200, {})
        pacer.wait_turn()
    assert clock.sleeps == []
