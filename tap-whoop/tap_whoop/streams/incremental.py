"""Collections read incrementally: request windows, lookback, history in turns, signposts and progress
lines; after a complete incremental read, `tap_whoop.deletions.complete_read` takes over."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
import typing as t

from tap_whoop.client.pagination import NextTokenPaginator
from tap_whoop.deletions.complete_read import EVENT_STREAMS, ReconcilingStream
from tap_whoop.deletions.reconcile import Seen
from tap_whoop.streams.progress import Progress
from tap_whoop.timestamps import format_datetime, parse_datetime

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    import requests
    from singer_sdk.helpers.types import Context, Record


PAGE_SIZE = 25  # WHOOP's maximum for every collection endpoint
# Partition state of a history not read yet: records starting before `backfill_before` are still to come; the
# keys of the last page read before it (WHOOP's filter includes that boundary again) are not emitted twice.
BACKFILL_BEFORE = "backfill_before"
BACKFILL_SEEN = "backfill_seen"
ONE_MS = dt.timedelta(milliseconds=1)
# With `webhooks`: when this partition last listed its window (a sweep), in its Singer state, since Meltano
# deletes the config after each run.
SWEPT_AT = "swept_at"
DEFAULT_SWEEP_HOURS = 24
# A sweep falls due this much early, so a schedule's few seconds of jitter cannot postpone it by a whole run.
SWEEP_EARLY_SECONDS = 1800.0


@dataclasses.dataclass(frozen=True)
class Turn:
    """What one sync of a partition reads.

    `incremental`: the window from the bookmark (minus the lookback) to now, in full; on first contact with
    an athlete only the *head* (the last `lookback_days`, at least a day), leaving the older history to
    backfill turns. `backfill`: the next `max_pages` pages (newest first) of the history not read yet.
    """

    kind: str = "incremental"
    max_pages: int | None = None

    @property
    def is_backfill(self) -> bool:
        return self.kind == "backfill"


INCREMENTAL = Turn()


class WhoopCollectionStream(ReconcilingStream):
    """A paginated collection (`records` + `next_token`), read incrementally on `updated_at`.

    WHOOP filters collections by each record's own `start`, sorts them newest-`start` first and changes
    records after the fact, so:
    - the request window starts `lookback_days` before the bookmark (or at `start_date` on the first run) to
      catch late scores, back-dated workouts and edited sleeps;
    - `is_sorted = False`: the SDK keeps the new bookmark as a progress marker and promotes it only when the
      stream (partition) completes, so an interrupted run re-reads from the old bookmark and loses nothing;
    - the bookmark is capped by the replication signpost: the run's start time, or `end_date` when the
      window is bounded, because records starting after `end_date` were never requested;
    - on first contact (no bookmark) an incremental turn reads only the head, and the rest of the history
      goes to backfill turns (`Turn`), so a new athlete's years of history never hold up anyone's fresh data.
      Backfill turns move their own cursor (`backfill_before`), never the bookmark; a complete incremental
      read with no records still sets the bookmark (to the signpost), so first contact happens once.

    The scheduler sets `turn` before each `sync(context)` and calls `finish_turn(context)` after it succeeded.
    """

    replication_key = "updated_at"
    # Keep the SDK's check_sorted=True: with it off, the progress marker takes the *last* value, not the max.
    is_sorted = False

    # One progress line per page: at WHOOP's sustained limit that is one line every 0.6 s or so.
    progress_every_pages = 1
    # Field that tells how far back in time a page reached (recoveries carry no `start` of their own).
    progress_time_field = "start"

    turn: Turn = INCREMENTAL
    _listed = True
    _skip_keys: frozenset[t.Any] | set[t.Any] = frozenset()

    def get_new_paginator(self) -> NextTokenPaginator:
        self._paginator = NextTokenPaginator(self.turn.max_pages)
        return self._paginator

    def _signpost(self) -> dt.datetime:
        signpost = dt.datetime.fromtimestamp(self.run.initialized_at / 1000, tz=dt.UTC)
        if end_date := self.config.get("end_date"):
            signpost = min(signpost, parse_datetime(end_date))
        return signpost

    def _start_date(self) -> dt.datetime | None:
        start_date = self.config.get("start_date")
        return parse_datetime(start_date) if start_date else None

    def _partition(self, context: Context | None) -> dict[str, t.Any]:
        return self.get_context_state(context) if context else {}

    def head_start(self) -> dt.datetime:
        """Where a first contact's head begins: `lookback_days` (at least one) before the signpost."""
        return self._signpost() - dt.timedelta(days=max(1, self.config.get("lookback_days", 0)))

    def has_bookmark(self, context: Context | None) -> bool:
        return bool(self._partition(context).get("replication_key_value"))

    @property
    def follows_webhooks(self) -> bool:
        """With `webhooks`, WHOOP announces this stream's changes: its window is listed only by sweeps."""
        return bool(self.config.get("webhooks")) and self.name in EVENT_STREAMS

    def sweep_due(self, context: Context | None) -> bool:
        swept = self._partition(context).get(SWEPT_AT)
        if not swept:
            return True
        period = int(self.config.get("sweep_hours", DEFAULT_SWEEP_HOURS)) * 3600
        return self.clock() - parse_datetime(swept).timestamp() >= period - SWEEP_EARLY_SECONDS

    def lists_window(self, context: Context | None) -> bool:
        """Whether this turn lists its window: always, unless events bring this stream's changes, the
        athlete's head has been read and no sweep is due."""
        return (
            self.turn.is_backfill
            or not self.follows_webhooks
            or not self.has_bookmark(context)
            or self.sweep_due(context)
        )

    def backfill_pending(self, context: Context | None) -> bool:
        """Whether part of this partition's history has not been read yet."""
        return BACKFILL_BEFORE in self._partition(context)

    def window(self, context: Context | None) -> tuple[dt.datetime | None, dt.datetime | None]:
        """The [start, end) interval of record start times this turn requests."""
        start_date = self._start_date()
        end_date = self.config.get("end_date")
        end = parse_datetime(end_date) if end_date else None
        if self.turn.is_backfill:
            before = parse_datetime(self._partition(context)[BACKFILL_BEFORE]) + ONE_MS
            return start_date, min(before, end) if end else before
        bookmark = self._partition(context).get("replication_key_value")
        if not bookmark:
            head = self.head_start()
            return (max(head, start_date) if start_date else head), end
        start = parse_datetime(bookmark) - dt.timedelta(days=self.config.get("lookback_days", 0))
        return (max(start, start_date) if start_date else start), end

    def get_replication_key_signpost(self, context: Context | None = None) -> str:
        return format_datetime(self._signpost())

    def bookmark_moves(self) -> bool:
        return not self.turn.is_backfill  # history read in turns never moves the bookmark

    def post_process(self, row: Record, context: Context | None = None) -> Record | None:
        if self._skip_keys and row.get(self.primary_keys[0]) in self._skip_keys:
            return None  # the boundary record the previous turn already emitted
        return row

    def finish_turn(self, context: Context) -> None:
        """After a successful sync: move the history cursor, give a first contact its bookmark."""
        state = self.get_context_state(context)
        if self.turn.is_backfill:
            if self._paginator.truncated and self._progress.oldest_start is not None:
                state[BACKFILL_BEFORE] = format_datetime(self._progress.oldest_start)
                state[BACKFILL_SEEN] = self._progress.last_page_keys
            else:
                state.pop(BACKFILL_BEFORE, None)
                state.pop(BACKFILL_SEEN, None)
            return
        if self._first_contact:
            head, start_date = self.head_start(), self._start_date()
            if start_date is None or head > start_date:
                state[BACKFILL_BEFORE] = format_datetime(head)
                state[BACKFILL_SEEN] = self._progress.last_page_keys
        if not state.get("replication_key_value"):
            state["replication_key"] = self.replication_key
            state["replication_key_value"] = self.get_replication_key_signpost(context)
        if self._listed and self.follows_webhooks:
            state[SWEPT_AT] = format_datetime(dt.datetime.fromtimestamp(self.clock(), dt.UTC))

    def get_url_params(self, context: Context | None, next_page_token: str | None) -> dict[str, t.Any]:
        start, end = self.window(context)
        return {
            "limit": PAGE_SIZE,
            "start": format_datetime(start) if start else None,
            "end": format_datetime(end) if end else None,
            "nextToken": next_page_token,
        }

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        self._first_contact = not self.turn.is_backfill and not self.has_bookmark(context)
        self._newest_update: str | None = None
        self._listed = self.lists_window(context)
        if not self._listed and context is not None:
            self.logger.info(
                "%s%s from webhook events (no sweep due)", self.athlete_prefix(context), self.name
            )
            yield from self.follow_events(context)
            return
        seen = self._partition(context).get(BACKFILL_SEEN) if self.turn.is_backfill else None
        self._skip_keys = set(seen or ())
        start, end = self.window(context)
        self.logger.info(
            "%sRequesting %s%s with start %s and end %s",
            self.athlete_prefix(context),
            self.name,
            " (history)" if self.turn.is_backfill else " (head)" if self._first_contact else "",
            format_datetime(start) if start else "(beginning of history)",
            format_datetime(end) if end else "(now)",
        )
        self._progress = Progress(start=start, end=end, began=time.monotonic())
        returned: dict[str, Seen] = {}
        for record in super().get_records(context):
            seen = self.seen_of(record)
            returned[seen.key] = seen
            yield self.note(record)
        self._log_progress(final=True)
        # Only a read that got to its end may say what is gone; an exception above skips all of this. A
        # history turn covers only part of its window (and none of the lookback's): it reconciles nothing.
        if context is not None and "user_id" in context and not self.turn.is_backfill:
            yield from self.after_complete_read(context, start, end, returned)

    def note(self, record: dict[str, t.Any]) -> dict[str, t.Any]:
        updated = record.get(self.replication_key or "")
        if isinstance(updated, str) and (self._newest_update is None or updated > self._newest_update):
            self._newest_update = updated
        return record

    def next_window_start(self, context: Context) -> dt.datetime | None:
        """Where the next run's window will start: its bookmark (the newest `updated_at` emitted, capped by
        the signpost, as the SDK will commit it) minus the lookback, never before start_date."""
        bookmark = self._newest_update or self.get_starting_replication_key_value(context)
        if bookmark is None:
            return None
        next_bookmark = min(
            parse_datetime(bookmark), parse_datetime(self.get_replication_key_signpost(context))
        )
        start = next_bookmark - dt.timedelta(days=self.config.get("lookback_days", 0))
        if start_date := self.config.get("start_date"):
            start = max(start, parse_datetime(start_date))
        return start

    def parse_response(self, response: requests.Response) -> Iterable[dict[str, t.Any]]:
        records = list(super().parse_response(response))
        self._progress.add_page(records, self.progress_time_field, self.primary_keys[0])
        if self._progress.pages % self.progress_every_pages == 0:
            self._log_progress()
        return records

    def _log_progress(self, *, final: bool = False) -> None:
        progress = self._progress
        reached = format_datetime(progress.oldest_start) if progress.oldest_start else "-"
        requested = format_datetime(progress.start) if progress.start else "beginning of history"
        eta = progress.eta_seconds(self.pacer.sustained_rate())
        self.logger.info(
            "%s%s %s: %d records in %d pages; reached start %s (requested %s)%s",
            self.athlete_prefix(self.context),
            self.name,
            "done" if final else "progress",
            progress.records,
            progress.pages,
            reached,
            requested,
            "" if final or eta is None else f"; ~{dt.timedelta(seconds=round(eta))} left at the rate limit",
        )
