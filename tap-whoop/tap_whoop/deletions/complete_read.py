"""What a collection does once it has read its window to the end: confirm the records it no longer returns
(reconciliation: a 404 by id is the only proof of a deletion), fetch the records webhooks announced that the
window did not return, and hand the new reconciliation state and the confirmed deletions over in one step."""

from __future__ import annotations

import datetime as dt
import typing as t

from tap_whoop.deletions import reconcile
from tap_whoop.deletions.events import EVENT_TYPES
from tap_whoop.deletions.feed import CURSOR_KEY
from tap_whoop.deletions.reconcile import Seen
from tap_whoop.errors import RecordLookupRefused, WhoopAPIError
from tap_whoop.streams.base import WhoopStream
from tap_whoop.timestamps import format_datetime, parse_datetime

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from singer_sdk.helpers.types import Context

    from tap_whoop.deletions.feed import EventFeed
    from tap_whoop.stores.events.log import StoredEvent

DELETED_RECORDS = "deleted_records"
EVENT_STREAMS = frozenset(stream for stream, _ in EVENT_TYPES.values())


class ReconcilingStream(WhoopStream):
    """A collection whose complete reads are reconciled and whose webhook events are followed."""

    # The single-record endpoint (`{id}` is the record's key), for confirmations and webhook updates.
    record_path: t.ClassVar[str]
    # Reconciliation follows the time WHOOP's window filter follows; a record whose time trails that by up to
    # `reconcile_margin` (recoveries: created after their sleep) is a suspect only that far inside the window.
    reconcile_margin = dt.timedelta(0)
    # A deletion confirmed this run in that stream deletes this stream's record named the same (no call).
    deleted_with: t.ClassVar[str | None] = None

    def note(self, record: dict[str, t.Any]) -> dict[str, t.Any]:
        """`record`, about to be emitted (the incremental read keeps track of what it emits)."""
        return record

    def next_window_start(self, context: Context) -> dt.datetime | None:
        """Where the next run's window will start (records older than that are no longer watched)."""
        raise NotImplementedError

    def seen_of(self, record: dict[str, t.Any]) -> Seen:
        """How reconciliation remembers a record: its key and `start` (see reconcile.py)."""
        key = str(record[self.primary_keys[0]])
        return Seen(key, parse_datetime(record["start"]), key)

    def fetch_for_event(self, record_id: str, context: Context) -> dict[str, t.Any] | None:
        """The record a webhook names (sleeps and workouts: by their own UUID)."""
        return self.fetch_one(self.record_path.format(id=record_id), context)

    @property
    def _deleted_records(self) -> t.Any:  # DeletedRecordsStream (streams/endpoints.py)
        return self.run.streams.get(DELETED_RECORDS)

    @property
    def reconciling(self) -> bool:
        """Reconciliation costs confirmation calls: only when on and its deletions go somewhere."""
        deleted = self._deleted_records
        return bool(self.config.get("reconcile_deletions", True)) and deleted is not None and deleted.selected

    @property
    def event_feed(self) -> EventFeed:
        return self.run.event_feed

    def after_complete_read(
        self, context: Context, start: dt.datetime | None, end: dt.datetime | None, returned: dict[str, Seen]
    ) -> Iterator[dict[str, t.Any]]:
        """Confirm suspects, fetch what webhooks announced, then hand over the new state in one step."""
        state = self.get_context_state(context)
        user_id = int(context["user_id"])
        cursor = int(state.get(CURSOR_KEY) or 0)
        events = [e for e in self.event_feed.events(user_id, cursor) if e.event.stream == self.name]
        observed = dict(returned)
        settled: set[str] = set()
        deletions: list[dict[str, t.Any]] = []
        previous = reconcile.load(state) if self.reconciling else {}
        if self.reconciling:
            announced = {e.event.id for e in events if e.event.action == "deleted"}
            since = start + self.reconcile_margin if start is not None else None
            for suspect in reconcile.suspects(previous, returned, since, end):
                if suspect.deletion_id in announced:
                    settled.add(suspect.key)  # a webhook said so: deleted_records emits it, no call needed
                    continue
                if self.deleted_with and (
                    self.deleted_with,
                    suspect.deletion_id,
                ) in self._deleted_records.pending(context):
                    settled.add(suspect.key)
                    deletions.append(self._deletion(suspect, user_id))
                    continue
                try:
                    record = self.fetch_one(self.record_path.format(id=suspect.key), context)
                except (WhoopAPIError, RecordLookupRefused) as exc:
                    self.logger.warning(
                        "%s %s is missing from the window but its lookup failed (%s); asking again next run.",
                        self.name, suspect.key, exc,
                    )  # fmt: skip
                    continue
                settled.add(suspect.key)
                if record is None:
                    deletions.append(self._deletion(suspect, user_id))
                else:
                    yield self.note(record)  # it moved out of the window or changed: nothing is deleted
        cursor_after, fetched = yield from self._fetch_announced(context, events, returned, cursor)
        for record in fetched:
            seen = self.seen_of(record)
            observed.setdefault(seen.key, seen)
        if deletions:
            self.logger.info(
                "%s: %d record(s) gone from WHOOP (confirmed by 404): %s",
                self.name, len(deletions), ", ".join(d["id"] for d in deletions),
            )  # fmt: skip
        # One synchronous step: no STATE message can fall between forgetting a key and queueing its deletion.
        if self.reconciling:
            keep_from = self.next_window_start(context)
            state[reconcile.STATE_KEY] = reconcile.dump(
                reconcile.next_seen(previous, observed, settled, keep_from)
            )
            self._deleted_records.enqueue(context, deletions)
        else:
            state.pop(reconcile.STATE_KEY, None)
        if self.name in EVENT_STREAMS:
            state[CURSOR_KEY] = cursor_after

    def follow_events(self, context: Context) -> Iterator[dict[str, t.Any]]:
        """A turn without a list call (`webhooks` on, no sweep due): the records the events name, fetched by
        id; reconciliation forgets what a `*.deleted` event announced (deleted_records emits it), so the
        next sweep asks nothing about it, and remembers what was fetched, so the sweep watches it."""
        state = self.get_context_state(context)
        cursor = int(state.get(CURSOR_KEY) or 0)
        events = [
            e for e in self.event_feed.events(int(context["user_id"]), cursor) if e.event.stream == self.name
        ]
        cursor_after, fetched = yield from self._fetch_announced(context, events, {}, cursor)
        if self.reconciling:
            previous = reconcile.load(state)
            announced = {e.event.id for e in events if e.event.action == "deleted"}
            gone = {key for key, seen in previous.items() if seen.deletion_id in announced}
            observed = {seen.key: seen for seen in map(self.seen_of, fetched)}
            keep_from = self.next_window_start(context)
            state[reconcile.STATE_KEY] = reconcile.dump(
                reconcile.next_seen(previous, observed, gone, keep_from)
            )
        state[CURSOR_KEY] = cursor_after

    def _fetch_announced(
        self, context: Context, events: list[StoredEvent], returned: dict[str, Seen], cursor: int
    ) -> t.Generator[dict[str, t.Any], None, tuple[int, list[dict[str, t.Any]]]]:
        """Fetch each record an `*.updated` webhook named that the window read did not return (a workout
        logged for a month ago); returns (new cursor, records fetched)."""
        have = {seen.deletion_id for seen in returned.values()}
        fetched: list[dict[str, t.Any]] = []
        for stored in events:
            event = stored.event
            if event.action != "updated" or event.id in have:
                continue
            have.add(event.id)
            try:
                record = self.fetch_for_event(event.id, context)
            except RecordLookupRefused as exc:
                self.logger.warning(
                    "%s: skipping webhook %s for %s (%s).", self.name, event.trace_id, event.id, exc
                )
                continue
            except WhoopAPIError as exc:
                self.logger.warning(
                    "%s: could not fetch %s named by webhook %s (%s); trying again next run.",
                    self.name, event.id, event.trace_id, exc,
                )  # fmt: skip
                return stored.seq - 1, fetched
            if record is None:
                # Deleted since: its `*.deleted` webhook (or reconciliation) records that.
                self.logger.info(
                    "%s: %s named by webhook %s no longer exists.", self.name, event.id, event.trace_id
                )
                continue
            fetched.append(record)
            yield self.note(record)
        return self.event_feed.cursor_after(cursor), fetched

    def _deletion(self, seen: Seen, user_id: int) -> dict[str, t.Any]:
        return {
            "stream": self.name,
            "id": seen.deletion_id,
            "user_id": user_id,
            "deleted_at": format_datetime(dt.datetime.now(dt.UTC)),
            "detected_by": "reconciliation",
            "trace_id": None,
        }
