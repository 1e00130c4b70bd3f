"""WHOOP's webhook events (v2 model): their types, what each means for the tap, and checking their shape.

A delivery's body is `{"user_id", "id", "type", "trace_id"}`; `id` is the sleep or workout UUID and, for
`recovery.*`, the UUID of the recovery's sleep. A create arrives as an `updated` event; cycles and body
measurements have none. Deliveries are retried and duplicated by WHOOP, so `trace_id` identifies an event.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

# type -> (stream, action)
EVENT_TYPES: dict[str, tuple[str, str]] = {
    "workout.updated": ("workouts", "updated"),
    "workout.deleted": ("workouts", "deleted"),
    "sleep.updated": ("sleeps", "updated"),
    "sleep.deleted": ("sleeps", "deleted"),
    "recovery.updated": ("recoveries", "updated"),
    "recovery.deleted": ("recoveries", "deleted"),
}
MAX_TRACE_ID_LENGTH = 200
# Every event log must store what is accepted here: a SQL log keeps user_id in a signed 64-bit column.
MAX_USER_ID = 2**63 - 1


class InvalidEvent(ValueError):
    """The body is not a WHOOP v2 webhook event; the message says what is wrong (never echoes the body)."""


@dataclasses.dataclass(frozen=True)
class WebhookEvent:
    user_id: int
    id: str
    type: str
    trace_id: str

    @property
    def stream(self) -> str:
        """The tap stream the event is about (`sleeps`, `recoveries`, `workouts`)."""
        return EVENT_TYPES[self.type][0]

    @property
    def action(self) -> str:
        """`updated` (created or changed) or `deleted`."""
        return EVENT_TYPES[self.type][1]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_payload(cls, payload: Any) -> WebhookEvent:
        """Validate a decoded delivery body; extra fields are ignored (WHOOP may add some).

        What passes is storable by every event log alike (file or SQL), so the service answers the same
        whichever `token_store` it has: a signed delivery that no log could store is refused here, never
        acknowledged by one backend and a 500 in another."""
        if not isinstance(payload, dict):
            raise InvalidEvent("the body must be a JSON object")
        missing = [name for name in ("user_id", "id", "type", "trace_id") if name not in payload]
        if missing:
            raise InvalidEvent(f"missing field(s): {', '.join(missing)}")
        user_id, record_id, event_type, trace_id = (payload[k] for k in ("user_id", "id", "type", "trace_id"))
        if not isinstance(user_id, int) or isinstance(user_id, bool) or not 0 < user_id <= MAX_USER_ID:
            raise InvalidEvent("user_id must be a positive 64-bit integer")
        if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
            raise InvalidEvent(f"unknown type; expected one of {', '.join(EVENT_TYPES)}")
        if isinstance(record_id, int) and not isinstance(record_id, bool):
            raise InvalidEvent(
                "id is an integer, as in WHOOP's v1 webhook model: set the webhook model version to v2 for "
                "this app in WHOOP's developer dashboard"
            )
        try:
            canonical = str(uuid.UUID(str(record_id)))
        except ValueError:
            raise InvalidEvent("id must be a UUID") from None
        # Printable only: no line breaks to forge log lines, no NUL (PostgreSQL refuses it), no lone
        # surrogate (not encodable as UTF-8).
        if (
            not isinstance(trace_id, str)
            or not trace_id.strip()
            or len(trace_id) > MAX_TRACE_ID_LENGTH
            or not trace_id.isprintable()
        ):
            raise InvalidEvent(
                f"trace_id must be a non-empty string of at most {MAX_TRACE_ID_LENGTH} printable characters"
            )
        return cls(user_id=user_id, id=canonical, type=event_type, trace_id=trace_id)
