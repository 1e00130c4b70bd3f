"""Shared fixtures: configs bound to a sandbox, in-process tap runs, fast retries."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections import defaultdict
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import pytest
import requests
from tap_whoop import whoop
from tap_whoop.athletes.registry import AthleteRegistry
from tap_whoop.client.api import WhoopClient
from tap_whoop.client.retries import RetryPolicy
from tap_whoop.streams.base import WhoopStream
from tap_whoop.streams.endpoints import STREAM_TYPES
from tap_whoop.streams.incremental import WhoopCollectionStream
from tap_whoop.tap import TapWhoop

# Streams and their endpoints as the tap defines them (tap_whoop/streams.py).
PATHS = {stream.name: stream.path for stream in STREAM_TYPES if issubclass(stream, WhoopStream)}
COLLECTIONS = tuple(stream.name for stream in STREAM_TYPES if issubclass(stream, WhoopCollectionStream))
# The paths the sandbox logs: the API root's own path ("/developer", as at WHOOP) before each endpoint.
API_ROOT = urlparse(whoop.API_URL).path
COLLECTION_PATHS = {name: API_ROOT + PATHS[name] for name in COLLECTIONS}
# Production's policy with waits of milliseconds (its tries and its backoff's shape unchanged).
# The token store's and event log's backends every store test runs on. PostgreSQL is a real server (the
# whoop_sandbox plugin's session-wide postgres_server), hence slow.
STORE_BACKENDS = ["file", "sqlite", "duckdb", pytest.param("postgres", marks=pytest.mark.slow)]
FAST_RETRIES = RetryPolicy(base_seconds=0.01, max_wait_seconds=0.05, give_up_seconds=30.0, timeout=(3.0, 3.0))


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Production waits (seconds) shrunk to milliseconds, so fault tests stay quick."""
    # The timeout: short, yet well above what a loaded machine takes to answer (make test runs suites side by
    # side): a retried request would break the tests that count them.
    monkeypatch.setattr(WhoopClient, "policy", FAST_RETRIES)


def postgres_url(request: pytest.FixtureRequest) -> str:
    """A fresh database on the session's PostgreSQL server, as a plain postgresql:// URL (as psql users write
    it)."""
    server = request.getfixturevalue("postgres_server")
    return server.url(server.create_database(f"t_{uuid.uuid4().hex}"), driver="postgresql")


@pytest.fixture
def make_config(tmp_path):
    """`make_config(sandbox, **overrides)`: a complete tap config for one athlete of a running sandbox."""

    def make(sb, athlete: int = 0, **overrides: Any) -> dict[str, Any]:
        return {
            "client_id": sb.client_id,
            "client_secret": sb.client_secret,
            "refresh_token": sb.grant_refresh_token(athlete=athlete),
            "api_url": sb.api_url,
            "token_url": sb.token_url,
            "auth_url": sb.auth_url,
            "token_store": str(tmp_path / f"tokens-{athlete}.json"),
            **overrides,
        }

    return make


# Where a module's runs start (its `sandbox` fixture sets the history's length).
START = "2020-01-01T00:00:00Z"


@pytest.fixture
def config(sandbox, make_config):
    """The tap's config for the first athlete of the module's sandbox, from START (or the module's own)."""
    return make_config(sandbox, start_date=START)


@pytest.fixture
def baseline(config):
    """A first, clean run of `config`."""
    first = run_tap(config)
    assert first.error is None
    return first


@dataclass
class SyncResult:
    messages: list[dict]
    error: BaseException | None = None
    records: dict[str, list[dict]] = field(default_factory=lambda: defaultdict(list))

    def __post_init__(self) -> None:
        for message in self.messages:
            if message["type"] == "RECORD":
                self.records[message["stream"]].append(message["record"])

    def served(self, stream: str) -> list[dict]:
        """The stream's records as WHOOP served them: without the tap's own `unmodelled_fields` where it holds
        nothing (its null is what tells a loader that a field WHOOP stopped sending is gone)."""
        return [
            {k: v for k, v in r.items() if not (k == "unmodelled_fields" and v is None)}
            for r in self.records[stream]
        ]

    @property
    def states(self) -> list[dict]:
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def state(self) -> dict | None:
        """The last STATE message, as a target or Meltano would keep it."""
        return self.states[-1] if self.states else None


def run_tap(config: dict, state: dict | None = None, catalog: dict | None = None) -> SyncResult:
    """Run one sync in-process, capturing the Singer messages; an exception is kept, not raised."""
    tap = TapWhoop(config=dict(config), state=state, catalog=catalog, parse_env_config=False)
    out = io.StringIO()
    error = None
    with redirect_stdout(out):
        try:
            tap.sync_all()
        except Exception as exc:
            error = exc
    return SyncResult([json.loads(line) for line in out.getvalue().splitlines() if line.strip()], error)


def bookmark(state: dict | None, stream: str) -> str | None:
    """The committed (resumable) bookmark of a stream's only partition."""
    partitions = ((state or {}).get("bookmarks", {}).get(stream) or {}).get("partitions") or [{}]
    assert len(partitions) == 1
    return partitions[0].get("replication_key_value")


def refresh_outside_the_tap(sb, refresh_token: str, timeout: float = 10, **extra: str) -> requests.Response:
    """Spend a refresh token at the sandbox as another client of the same app would (rotating it)."""
    return requests.post(
        sb.token_url,
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": sb.client_id,
            "client_secret": sb.client_secret,
            **extra,
        },
        timeout=timeout,
    )


def mint_access_token(sb, athlete: int = 0) -> str:
    """An access token of the sandbox's app obtained outside the tap, as another client of that app would."""
    response = refresh_outside_the_tap(
        sb, sb.grant_refresh_token(athlete=athlete), timeout=5, scope="offline"
    )
    response.raise_for_status()
    return response.json()["access_token"]


def api_requests(sb, path: str) -> list[dict]:
    return [r for r in sb.request_log if r["path"] == path]


@pytest.fixture
def tap_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="tap-whoop")
    return caplog


def enroll(sb, config: dict, athletes) -> list[int]:
    """Enroll these sandbox athletes (indexes) in `config`'s token store, as `tap-whoop athletes add` does."""
    registry = AthleteRegistry(config)
    return [registry.import_refresh_token(sb.grant_refresh_token(athlete=i))[0] for i in athletes]


def partitions(state: dict | None, stream: str) -> dict[int, dict]:
    """A stream's state partitions by user_id."""
    found = ((state or {}).get("bookmarks", {}).get(stream) or {}).get("partitions") or []
    return {p["context"]["user_id"]: p for p in found}
