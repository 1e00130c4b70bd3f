"""Single-record endpoints (profile, body measurement): re-read every `profile_refresh_days`, staggered.

They change rarely and cost a call each, and WHOOP's daily quota is shared by every athlete of the app, so
each athlete's pair is re-read once per period (never twice within a day), at a point of the period set by
their user_id: an app's athletes spread evenly over the days instead of all falling due in one run. When
they were last read is kept in the athlete's Singer state partition (`synced_at`), so it is committed with
the records.
"""

from __future__ import annotations

import datetime as dt
import typing as t

from tap_whoop.streams.base import WhoopStream
from tap_whoop.timestamps import format_datetime, parse_datetime

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

SYNCED_AT = "synced_at"
DAY_SECONDS = 86400.0
# Never re-read within this of the last read, so a schedule's jitter cannot make it twice a day.
MIN_INTERVAL_SECONDS = 20 * 3600.0
DEFAULT_REFRESH_DAYS = 7


def stagger(user_id: int, period: float) -> float:
    """The athlete's fixed offset into the period (Knuth's multiplicative hash: user_ids spread evenly)."""
    return (user_id * 2654435761 % 2**32) / 2**32 * period


class WhoopSnapshotStream(WhoopStream):
    """One record per athlete, full table, read only when due."""

    primary_keys = ("user_id",)
    replication_key = None
    records_jsonpath = "$"

    def get_new_paginator(self) -> None:
        return None

    @property
    def period_seconds(self) -> float:
        return max(1, int(self.config.get("profile_refresh_days", DEFAULT_REFRESH_DAYS))) * DAY_SECONDS

    def last_synced(self, context: Context) -> float | None:
        value = self.get_context_state(context).get(SYNCED_AT)
        return parse_datetime(value).timestamp() if value else None

    def is_due(self, context: Context) -> bool:
        synced = self.last_synced(context)
        if synced is None:
            return True
        now, period = self.clock(), self.period_seconds
        boundary = now - ((now - stagger(int(context["user_id"]), period)) % period)
        return synced < boundary and now - synced >= MIN_INTERVAL_SECONDS

    def finish_turn(self, context: Context) -> None:
        self.get_context_state(context)[SYNCED_AT] = format_datetime(
            dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        )
