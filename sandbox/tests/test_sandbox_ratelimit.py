"""Point 5: WHOOP's rate limits — per application, fixed windows, X-RateLimit-* headers, 429 when over."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from whoop_sandbox.clock import ManualClock
from whoop_sandbox.ratelimit import RateLimiter

# Time arithmetic: the date lane (make test-dates) runs this module at every date it tries.
pytestmark = pytest.mark.clock

NOW = datetime(2026, 3, 8, 6, 59, 30, tzinfo=UTC)


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_default_headers_are_whoops(client):
    first = client.get("/v2/cycle")
    assert first.headers["X-RateLimit-Limit"] == "100, 100;window=60, 10000;window=86400"
    # The token exchange is not an API call; this is the app's first.
    assert first.headers["X-RateLimit-Remaining"] == "99"
    assert 59 <= int(first.headers["X-RateLimit-Reset"]) <= 60
    second = client.get("/v2/user/measurement/body")
    assert second.headers["X-RateLimit-Remaining"] == "98"
    # Errors are counted and carry the headers too.
    missing = client.get("/v2/cycle/1")
    assert missing.status_code == 404
    assert missing.headers["X-RateLimit-Remaining"] == "97"


def test_scaled_down_limit_429_and_reset(whoop_sandbox_factory, make_client):
    clock = ManualClock(NOW)
    sandbox = whoop_sandbox_factory(rate_limits=[(5, 1.5)], clock=clock)
    client = make_client(sandbox)
    remaining = [client.get("/v2/cycle", limit=1).headers["X-RateLimit-Remaining"] for _ in range(5)]
    assert remaining == ["4", "3", "2", "1", "0"]
    over = client.get("/v2/cycle", limit=1)
    assert over.status_code == 429
    assert over.headers["X-RateLimit-Limit"] == "5, 5;window=1.5"
    assert over.headers["X-RateLimit-Remaining"] == "0"
    assert over.headers["X-RateLimit-Reset"] == "2"  # 1.5 s, rounded up
    assert [e["status"] for e in sandbox.request_log[-6:]] == [200] * 5 + [429]
    clock.advance(1.4)
    still = client.get("/v2/cycle", limit=1)
    assert still.status_code == 429
    assert still.headers["X-RateLimit-Reset"] == "1"
    clock.advance(0.1)  # the window has run its 1.5 s: a new one opens with the next request
    again = client.get("/v2/cycle", limit=1)
    assert again.status_code == 200
    assert again.headers["X-RateLimit-Remaining"] == "4"


def test_limits_are_shared_by_an_apps_athletes_not_across_apps(whoop_sandbox_factory, make_client):
    sandbox = whoop_sandbox_factory(rate_limits=[(4, 30)])
    athlete0, athlete1 = make_client(sandbox, 0), make_client(sandbox, 1)
    for c in (athlete0, athlete1, athlete0, athlete1):
        assert c.get("/v2/user/profile/basic").status_code == 200
    assert athlete0.get("/v2/user/profile/basic").status_code == 429
    assert athlete1.get("/v2/user/profile/basic").status_code == 429
    other_id, other_secret = sandbox.add_client()
    other_app = make_client(sandbox, 0, other_id, other_secret)
    response = other_app.get("/v2/user/profile/basic")
    assert response.status_code == 200
    assert response.headers["X-RateLimit-Remaining"] == "3"


def test_no_limits_no_headers(whoop_sandbox_factory, make_client):
    client = make_client(whoop_sandbox_factory(rate_limits=[]))
    for _ in range(150):
        response = client.get("/v2/cycle", limit=1)
        assert response.status_code == 200
    assert "X-RateLimit-Limit" not in response.headers


def test_tightest_window_is_reported():
    clock = FakeClock()
    limiter = RateLimiter([(3, 10), (5, 100)], clock=clock)
    allowed, headers = limiter.hit("app")
    assert allowed
    assert headers == {
        "X-RateLimit-Limit": "3, 3;window=10, 5;window=100",
        "X-RateLimit-Remaining": "2",
        "X-RateLimit-Reset": "10",
    }
    clock.now += 4
    limiter.hit("app")
    limiter.hit("app")
    allowed, headers = limiter.hit("app")
    assert not allowed
    assert headers["X-RateLimit-Remaining"] == "0"
    assert headers["X-RateLimit-Reset"] == "6"
    clock.now += 6  # the short window reopens; the long one has 2 left
    allowed, headers = limiter.hit("app")
    assert allowed
    assert headers["X-RateLimit-Limit"].startswith("5, ")
    assert headers["X-RateLimit-Remaining"] == "1"
    assert headers["X-RateLimit-Reset"] == "90"
    limiter.hit("app")
    allowed, headers = limiter.hit("app")
    assert not allowed
    assert headers["X-RateLimit-Reset"] == "90"
    clock.now += 90
    assert limiter.hit("app")[0]
    # Another app starts fresh.
    assert limiter.hit("other")[1]["X-RateLimit-Remaining"] == "2"


@pytest.mark.parametrize("limits", [[(100, 60), (10000, 86400)], [(10, 2)]])
def test_limit_header_is_built_from_the_configuration(limits):
    _, headers = RateLimiter(limits, clock=FakeClock()).hit("app")
    parts = headers["X-RateLimit-Limit"].split(", ")
    assert parts[1:] == [f"{limit};window={window}" for limit, window in limits]
