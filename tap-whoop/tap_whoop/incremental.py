"""Collections read incrementally: request windows, lookback, bookmarks capped by signposts, progress/ETA."""

from __future__ import annotations

import datetime as dt
import time
import typing as t

from tap_whoop.http import WhoopStream
from tap_whoop.pagination import NextTokenPaginator
from tap_whoop.timestamps import format_datetime, parse_datetime

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    import requests
    from singer_sdk.helpers.types import Context

PAGE_SIZE = 25  # WHOOP's maximum for every collection endpoint


class WhoopCollectionStream(WhoopStream):
    """A paginated collection (`records` + `next_token`), read incrementally on `updated_at`.

    WHOOP filters collections by each record's own `start`, sorts them newest-`start` first and changes
    records after the fact, so:
    - the request window starts `lookback_days` before the bookmark (or at `start_date` on the first run) to
      catch late scores, back-dated workouts and edited sleeps;
    - `is_sorted = False`: the SDK keeps the new bookmark as a progress marker and promotes it only when the
      stream (partition) completes, so an interrupted run re-reads from the old bookmark and loses nothing;
    - the bookmark is capped by the replication signpost: the run's start time, or `end_date` when the
      window is bounded, because records starting after `end_date` were never requested.
    """

    replication_key = "updated_at"
    # Keep the SDK's check_sorted=True: with it off, the progress marker takes the *last* value, not the max.
    is_sorted = False

    # One progress line per page: at WHOOP's sustained limit that is one line every 0.6 s or so.
    progress_every_pages = 1
    # Field that tells how far back in time a page reached (recoveries carry no `start` of their own).
    progress_time_field = "start"

    def get_new_paginator(self) -> NextTokenPaginator:
        self._paginator = NextTokenPaginator()
        return self._paginator

    def window(self, context: Context | None) -> tuple[dt.datetime | None, dt.datetime | None]:
        """The [start, end) interval of record start times requested this run."""
        # The bookmark, or start_date when there is none or it is later.
        start = self.get_starting_timestamp(context)
        if start is not None:
            start -= dt.timedelta(days=self.config.get("lookback_days", 0))
            if start_date := self.config.get("start_date"):
                start = max(start, parse_datetime(start_date))
        end_date = self.config.get("end_date")
        return start, (parse_datetime(end_date) if end_date else None)

    def get_replication_key_signpost(self, context: Context | None = None) -> str:
        signpost = dt.datetime.fromtimestamp(self._initialized_at / 1000, tz=dt.UTC)
        if end_date := self.config.get("end_date"):
            signpost = min(signpost, parse_datetime(end_date))
        return format_datetime(signpost)

    def get_url_params(self, context: Context | None, next_page_token: str | None) -> dict[str, t.Any]:
        start, end = self.window(context)
        return {
            "limit": PAGE_SIZE,
            "start": format_datetime(start) if start else None,
            "end": format_datetime(end) if end else None,
            "nextToken": next_page_token,
        }

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        start, end = self.window(context)
        self.logger.info(
            "Requesting %s with start %s and end %s",
            self.name,
            format_datetime(start) if start else "(beginning of history)",
            format_datetime(end) if end else "(now)",
        )
        self._progress = _Progress(start=start, end=end, began=time.monotonic())
        yield from super().get_records(context)
        self._log_progress(final=True)

    def parse_response(self, response: requests.Response) -> Iterable[dict[str, t.Any]]:
        records = list(super().parse_response(response))
        self._progress.add_page(records, self.progress_time_field)
        if self._progress.pages % self.progress_every_pages == 0:
            self._log_progress()
        return records

    def _log_progress(self, *, final: bool = False) -> None:
        progress = self._progress
        reached = format_datetime(progress.oldest_start) if progress.oldest_start else "-"
        requested = format_datetime(progress.start) if progress.start else "beginning of history"
        eta = progress.eta_seconds(self.pacer.sustained_rate())
        self.logger.info(
            "%s %s: %d records in %d pages; reached start %s (requested %s)%s",
            self.name,
            "done" if final else "progress",
            progress.records,
            progress.pages,
            reached,
            requested,
            "" if final or eta is None else f"; ~{dt.timedelta(seconds=round(eta))} left at the rate limit",
        )


class _Progress:
    """What a backfill has covered so far, to estimate what is left.

    Pages arrive newest first, so the oldest `start` read moves back from `end` towards the requested `start`;
    the remaining share of that span, at the pages-per-span rate seen so far, gives the pages left.
    """

    def __init__(self, start: dt.datetime | None, end: dt.datetime | None, began: float) -> None:
        self.start = start
        self.end = end or dt.datetime.now(dt.UTC)
        self.began = began
        self.pages = 0
        self.records = 0
        self.oldest_start: dt.datetime | None = None

    def add_page(self, records: list[dict[str, t.Any]], time_field: str) -> None:
        self.pages += 1
        self.records += len(records)
        starts = [parse_datetime(r[time_field]) for r in records if r.get(time_field)]
        if starts:
            oldest = min(starts)
            self.oldest_start = oldest if self.oldest_start is None else min(self.oldest_start, oldest)

    def eta_seconds(self, requests_per_second: float | None) -> float | None:
        if self.start is None or self.oldest_start is None:
            return None
        covered = (self.end - self.oldest_start).total_seconds()
        left = (self.oldest_start - self.start).total_seconds()
        if covered <= 0 or left <= 0:
            return 0.0
        pages_left = self.pages * left / covered
        elapsed = time.monotonic() - self.began
        observed = self.pages / elapsed if elapsed > 0 else None
        rates = [r for r in (requests_per_second, observed) if r]
        return pages_left / min(rates) if rates else None
