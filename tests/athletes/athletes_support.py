"""Helpers for the many-athlete acceptance tests: in-process tap runs, enrollment, state partitions."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from tap_whoop import whoop
from tap_whoop.athletes.registry import AthleteRegistry
from tap_whoop.streams.endpoints import STREAM_TYPES
from tap_whoop.streams.incremental import WhoopCollectionStream
from tap_whoop.tap import TapWhoop

API_ROOT = urlparse(whoop.API_URL).path  # the sandbox logs paths under it, as WHOOP serves them
COLLECTIONS = tuple(s.name for s in STREAM_TYPES if issubclass(s, WhoopCollectionStream))
COLLECTION_PATHS = {s.name: API_ROOT + s.path for s in STREAM_TYPES if s.name in COLLECTIONS}


@dataclass
class SyncResult:
    messages: list[dict[str, Any]]
    error: BaseException | None = None
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for message in self.messages:
            if message["type"] == "RECORD":
                self.records.setdefault(message["stream"], []).append(message["record"])

    @property
    def state(self) -> dict[str, Any] | None:
        states = [m["value"] for m in self.messages if m["type"] == "STATE"]
        return states[-1] if states else None


def run_tap(config: dict[str, Any], state: dict[str, Any] | None = None) -> SyncResult:
    """One sync in this process, its Singer messages captured; an exception is kept, not raised."""
    out = io.StringIO()
    error = None
    with redirect_stdout(out):
        try:
            TapWhoop(config=dict(config), state=state, parse_env_config=False).sync_all()
        except Exception as exc:
            error = exc
    return SyncResult([json.loads(line) for line in out.getvalue().splitlines() if line.strip()], error)


def config_for(sandbox: Any, token_store: str, **overrides: Any) -> dict[str, Any]:
    """A config for the sandbox's (first) app, without a refresh_token of its own."""
    return {
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
        "api_url": sandbox.api_url,
        "token_url": sandbox.token_url,
        "auth_url": sandbox.auth_url,
        "token_store": token_store,
        "start_date": "2020-01-01T00:00:00Z",
        **overrides,
    }


def enroll(sandbox: Any, config: dict[str, Any], athletes: Any) -> list[int]:
    """Enroll these sandbox athletes (indexes), as `tap-whoop athletes add` does."""
    registry = AthleteRegistry(config)
    return [registry.import_refresh_token(sandbox.grant_refresh_token(athlete=i))[0] for i in athletes]


def partitions(state: dict[str, Any] | None, stream: str) -> dict[int, dict[str, Any]]:
    found = ((state or {}).get("bookmarks", {}).get(stream) or {}).get("partitions") or []
    return {p["context"]["user_id"]: p for p in found}
