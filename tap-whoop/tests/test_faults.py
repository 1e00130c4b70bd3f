"""Each failure WHOOP can throw at us is retried or reported as designed; nothing is lost or leaked."""

from __future__ import annotations

import time

import pytest
from tap_whoop.tap import TapWhoop

from .conftest import (
    API_ROOT,
    COLLECTION_PATHS,
    COLLECTIONS,
    PATHS,
    api_requests,
    bookmark,
    mint_access_token,
    run_tap,
)

START = "2020-01-01T00:00:00Z"
SLEEP_PATH = COLLECTION_PATHS["sleeps"]


@pytest.fixture
def sandbox(whoop_sandbox_factory):
    return whoop_sandbox_factory(seed=5, days=40, athletes=1, rate_limits=[])


@pytest.fixture
def baseline(sandbox, make_config):
    """What a clean run reads (faults are injected after it)."""
    result = run_tap(make_config(sandbox, start_date=START))
    assert result.error is None
    sandbox.clear_log()
    return result


# Delays relative to the 3 s request timeout the tests use: "slow" answers in time, "timeout" does not.
FAULT_DELAYS = {"slow": 0.2, "timeout": 4.0}


def _fault_entries(sandbox, kind: str, expected: int) -> list[dict]:
    """Log entries of the injected faults (a timed-out handler logs once its delay is over)."""
    deadline = time.monotonic() + 3
    while True:
        entries = [r for r in sandbox.request_log if r.get("fault") == kind]
        if len(entries) >= expected or time.monotonic() > deadline:
            return entries
        time.sleep(0.05)


@pytest.mark.parametrize("kind", ["500", "502", "503", "slow", "timeout", "drop", "malformed_json"])
def test_transient_fault_is_retried(kind, sandbox, make_config, baseline):
    sandbox.inject_fault(kind, path_prefix=SLEEP_PATH, count=2, delay=FAULT_DELAYS.get(kind))
    result = run_tap(make_config(sandbox, start_date=START))
    assert result.error is None
    for stream in COLLECTIONS:
        assert len(result.records[stream]) == len(baseline.records[stream]), stream
    assert len(_fault_entries(sandbox, kind, 2)) == 2, "both faults were met"
    pages = len(api_requests(sandbox, COLLECTION_PATHS["cycles"]))  # the same history length, no faults there
    served = [
        r
        for r in api_requests(sandbox, SLEEP_PATH)
        if r["status"] == 200 and r.get("fault") in (None, "slow")
    ]
    # Each failed attempt was retried: the pages were all served in the end ("slow" pages count as served;
    # the second slow fault may fall on a sleep's signal stream, under the same path prefix).
    assert len(served) == pages
    assert bookmark(result.state, "sleeps") == bookmark(baseline.state, "sleeps")


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("503", "HTTP 503"),
        ("malformed_json", "malformed JSON"),
        ("drop", "dropped connection"),
    ],
)
def test_persistent_fault_fails_clearly(kind, expected, sandbox, make_config, baseline):
    config = make_config(sandbox, start_date=START)
    sandbox.inject_fault(kind, path_prefix=SLEEP_PATH, count=100)
    result = run_tap(config, state=baseline.state)
    message = str(result.error)
    assert "sleeps" in message
    assert PATHS["sleeps"] in message
    assert expected in message
    assert "gave up" in message
    assert config["refresh_token"] not in message
    assert "Bearer" not in message
    # The failed stream keeps its old bookmark.
    assert bookmark(result.state, "sleeps") == bookmark(baseline.state, "sleeps")


def test_other_4xx_is_fatal_and_named(sandbox, make_config):
    config = make_config(sandbox, api_url=sandbox.base_url + "/no-such-api")
    result = run_tap(config)
    message = str(result.error)
    assert "/no-such-api" + PATHS["profile"] in message
    assert "404" in message
    assert "api_url" in message
    assert config["refresh_token"] not in message
    # Not retried: one request only.
    assert len([r for r in sandbox.request_log if r["path"].startswith("/no-such-api")]) == 1


def test_401_refreshes_once_and_retries(sandbox, make_config, baseline):
    """Access tokens revoked server-side mid-life: the tap refreshes and carries on."""
    config = make_config(sandbox, start_date=START)
    first = run_tap(config)
    assert first.error is None
    sandbox.clear_log()
    sandbox.expire_access_tokens()
    result = run_tap(config, state=None)
    assert result.error is None
    assert len(result.records["cycles"]) == len(baseline.records["cycles"])
    statuses = [r["status"] for r in sandbox.request_log if r["path"].startswith(API_ROOT + "/")]
    assert statuses.count(401) == 1, "the stored access token was tried, refused once, then refreshed"
    assert statuses[-1] == 200


class StubAuthenticator:
    """Hands out `first` until told it was refused, then `after` (None: the same one again)."""

    def __init__(self, first: str, after: str | None = None) -> None:
        self.token, self.after = first, after
        self.rejected: list[str] = []

    def authenticate_request(self, request):
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request

    __call__ = authenticate_request

    def handle_unauthorized(self, rejected_access_token: str) -> None:
        self.rejected.append(rejected_access_token)
        self.token = self.after or self.token


@pytest.mark.parametrize("recovers", [True, False])
def test_401_forgets_the_token_and_retries_once(recovers, sandbox, make_config, monkeypatch):
    config = make_config(sandbox, start_date=START)
    assert run_tap(config).error is None  # the athlete is enrolled
    sandbox.clear_log()
    stub = StubAuthenticator("revoked-access-token", after=mint_access_token(sandbox) if recovers else None)
    monkeypatch.setattr(TapWhoop, "athlete_authenticator", lambda self, user_id: stub)
    result = run_tap(config)
    assert stub.rejected == ["revoked-access-token"]
    statuses = [r["status"] for r in sandbox.request_log if r["path"].startswith(API_ROOT + "/")]
    if recovers:
        assert result.error is None
        assert statuses[:2] == [401, 200]
        assert statuses.count(401) == 1
        assert all(result.records[stream] for stream in COLLECTIONS)
    else:
        assert statuses == [401, 401]  # the first collection; the athlete is then skipped
        message = str(result.error)
        assert "cycles" in message
        assert "401" in message
        assert "tap-whoop auth" in message
        assert "revoked-access-token" not in message
