"""The webhook event log's contract: what `tap-whoop serve` appends and the tap reads past its cursor.

Events live where the tokens live (the `token_store` setting): beside a file store, an append-only JSON-lines
file; in a SQL store, a table. Every backend guarantees:
- `append` returns only once the event is durable (fsynced, or committed), so the service may answer 2xx;
- an event is stored once per app and `trace_id` (WHOOP's retries and duplicates are recognised);
- every stored event has a `seq`, increasing in the order events were stored, and a reader that has seen
  `seq` N has seen every event stored before it: the tap's cursor is a `seq`.
Events are scoped to one WHOOP app (a fingerprint of its client_id, never the id itself), so apps may share a
store. Events older than the retention are pruned by the writer; the newest one always stays, so `seq` never
restarts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from abc import ABC, abstractmethod
from typing import Any

from tap_whoop.deletions.events import WebhookEvent
from tap_whoop.errors import WhoopUserError
from tap_whoop.timestamps import format_datetime, parse_datetime

RETENTION_DAYS = 90


class EventLogError(WhoopUserError):
    """The event log cannot be read or written (the message names its location, never a secret)."""


def app_fingerprint(client_id: str) -> str:
    """Which WHOOP app an event belongs to, without storing the (secret) client id."""
    return hashlib.sha256(f"tap-whoop-app:{client_id}".encode()).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class StoredEvent:
    seq: int
    received_at: dt.datetime  # when the service stored it (UTC): a webhook deletion's `deleted_at`
    event: WebhookEvent

    def to_dict(self, app: str) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "app": app,
            "received_at": format_datetime(self.received_at),
            **self.event.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StoredEvent:
        event = WebhookEvent(
            user_id=int(data["user_id"]),
            id=str(data["id"]),
            type=str(data["type"]),
            trace_id=str(data["trace_id"]),
        )
        return cls(seq=int(data["seq"]), received_at=parse_datetime(data["received_at"]), event=event)


class EventLog(ABC):
    """One app's webhook events in one store; see the module docstring for the guarantees."""

    location: str  # for messages: a path or a URL without password

    @abstractmethod
    def prepare(self) -> None:
        """Make sure events can be stored (create the directory or table), raising EventLogError if not: a
        service that starts must not then refuse every delivery."""

    @abstractmethod
    def append(self, event: WebhookEvent, received_at: dt.datetime) -> bool:
        """Store `event` durably; False when an event with its trace_id is stored already."""

    @abstractmethod
    def read(self, after: int = 0) -> list[StoredEvent]:
        """This app's events with `seq` greater than `after`, in `seq` order."""

    @abstractmethod
    def newest_seq(self) -> int:
        """The highest `seq` stored (of any app), 0 when the log is empty."""

    def newest_by_user(self) -> dict[int, dt.datetime]:
        """When each athlete's newest event was stored (a backend may answer this more cheaply)."""
        newest: dict[int, dt.datetime] = {}
        for stored in self.read():
            user_id = stored.event.user_id
            if user_id not in newest or stored.received_at > newest[user_id]:
                newest[user_id] = stored.received_at
        return newest

    @abstractmethod
    def prune(self, before: dt.datetime) -> int:
        """Forget events received before `before` (never the newest); returns how many were dropped."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r})"
