"""One tap run's view of the webhook event log: a single snapshot, read lazily, and the tap's cursors over it.

Each stream partition that consumes events keeps a cursor in Singer state (`webhook_cursor`: the highest
`seq` it has acted on); it asks for the events past it and, once its records are emitted, moves the cursor to
the snapshot's `high`. Every partition of a run sees the same snapshot (events stored while the run goes on
wait for the next run), so a cursor never skips an event. A run without a `tap-whoop serve` has an empty log.
"""

from __future__ import annotations

import datetime as dt
import logging
import typing as t
from collections import Counter

from tap_whoop.stores.events.log import EventLogError
from tap_whoop.timestamps import format_datetime

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from tap_whoop.stores.events.log import EventLog, StoredEvent

CURSOR_KEY = "webhook_cursor"
# With `webhooks` on, an enrolled athlete without an event for this long means the webhooks stopped arriving:
# an athlete trains or sleeps every day or two, and WHOOP's retries give up within hours.
SILENCE = dt.timedelta(hours=48)


class EventFeed:
    """The event log as of the first read of this run (read once more, capped, if a cursor lies below)."""

    def __init__(self, log: EventLog | None, logger: logging.Logger) -> None:
        self._log = log
        self.logger = logger
        self._events: list[StoredEvent] = []
        self._low: int | None = None  # every event past this seq (up to `high`) is in `_events`
        self.high = 0  # the snapshot's newest seq: where a consumer's cursor moves
        self.readable = log is not None
        self.consumers: set[int] = set()

    @property
    def location(self) -> str:
        return self._log.location if self._log is not None else "(none)"

    def _load(self, after: int) -> None:
        if not self.readable or self._log is None:
            self._low = 0
            return
        try:
            if self._low is None:
                self.high = self._log.newest_seq()
                if self.high < after:
                    self.logger.warning(
                        "The webhook event log %s ends at event %d, before the tap's cursor %d: it was "
                        "replaced or restored from a backup. Reading it from the start.",
                        self._log.location, self.high, after,
                    )  # fmt: skip
            after = self._floor(after)
            fresh = self._log.read(after)
        except EventLogError as exc:
            # Without the log, webhook-only changes wait for the next run; reconciliation still works.
            self.logger.warning("Webhook events are not read this run: %s", exc)
            self.readable = False
            self._events, self._low = [], 0
            return
        self._events = [e for e in fresh if e.seq <= self.high]
        self._low = after

    def events(self, user_id: int, after: int) -> list[StoredEvent]:
        """The snapshot's events for one athlete past a cursor (all of them if the log restarted below the
        cursor), in `seq` order."""
        self.consumers.add(user_id)
        if self._low is None or self._floor(after) < self._low:
            self._load(after)
        floor = self._floor(after)
        return [e for e in self._events if e.seq > floor and e.event.user_id == user_id]

    def _floor(self, after: int) -> int:
        """Events past this are new to a cursor `after` (all of them if the log restarted below it)."""
        return after if after <= self.high else 0

    def cursor_after(self, after: int) -> int:
        """Where a consumer whose cursor was `after` stands once it acted on this snapshot (unchanged when the
        log could not be read)."""
        return self.high if self.readable and self._low is not None else after

    def report_unknown_athletes(self) -> None:
        """Events for athletes no partition of this run consumed are kept in the log; say so."""
        strangers = Counter(e.event.user_id for e in self._events if e.event.user_id not in self.consumers)
        if not strangers:
            return
        newest = {e.event.user_id: e.received_at for e in self._events}
        listed = ", ".join(
            f"user_id {user_id} ({count} event(s), newest {format_datetime(newest[user_id])})"
            for user_id, count in sorted(strangers.items())
        )
        self.logger.warning(
            "Webhook events for athletes this run does not sync are kept in %s: %s. Authorize them with "
            "`tap-whoop auth` to sync them; events are pruned after their retention.",
            self.location,
            listed,
        )

    def last_events(self) -> dict[int, dt.datetime]:
        """When each athlete's newest event was stored (empty when the log cannot be read)."""
        if self._log is None:
            return {}
        try:
            return self._log.newest_by_user()
        except EventLogError as exc:
            self.logger.warning("Webhook events are not read this run: %s", exc)
            return {}

    def report_silent_athletes(self, enrolled: Iterable[tuple[int, float | None]], now: dt.datetime) -> None:
        """With `webhooks` on: warn, naming the fix, about athletes (user_id, enrolled at) enrolled longer
        than SILENCE ago without an event in that time; until fixed only the sweeps bring their changes."""
        last = self.last_events()
        since = now - SILENCE
        silent = [
            user_id
            for user_id, enrolled_at in enrolled
            if (enrolled_at is None or enrolled_at < since.timestamp())
            and (user_id not in last or last[user_id] < since)
        ]
        if not silent:
            return
        listed = ", ".join(
            f"{user_id} (last event {format_datetime(last[user_id]) if user_id in last else 'never'})"
            for user_id in silent
        )
        hours = int(SILENCE.total_seconds() // 3600)
        self.logger.warning(
            "No webhook event in %d hours for athletes %s, though `webhooks` is on: until they arrive only "
            "the sweeps bring their sleeps, recoveries and workouts. Check the webhook URL in WHOOP's "
            "developer dashboard (<public_url>/webhooks/whoop, v2 model) and that `tap-whoop serve` is "
            "running with this token_store (%s).",
            hours,
            listed,
            self.location,
        )
