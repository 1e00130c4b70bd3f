"""How far a collection's read has come, and how long the rest will take at the rate limit."""

from __future__ import annotations

import datetime as dt
import time
import typing as t

from tap_whoop.timestamps import parse_datetime


class Progress:
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
        self.last_page_keys: list[t.Any] = []

    def add_page(self, records: list[dict[str, t.Any]], time_field: str, key_field: str) -> None:
        self.pages += 1
        self.records += len(records)
        if records:
            self.last_page_keys = [r.get(key_field) for r in records]
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
