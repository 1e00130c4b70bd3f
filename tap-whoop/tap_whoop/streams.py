"""WHOOP API v2 streams: one small class per endpoint.

Every stream is a child of `profile`, whose one call yields the athlete's `user_id`. That `user_id` is the
context (and so the state partition) of every other stream: bookmarks are already kept per athlete, which is
what a multi-athlete app will need, and `body_measurement` takes its `user_id` from it.
"""

from __future__ import annotations

import typing as t

from tap_whoop.http import WhoopStream
from tap_whoop.incremental import WhoopCollectionStream

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context, Record


class ProfileStream(WhoopStream):
    """The athlete's basic profile (one record)."""

    name = "profile"
    path = "/v2/user/profile/basic"
    primary_keys = ("user_id",)
    replication_key = None
    records_jsonpath = "$"

    def get_new_paginator(self) -> None:
        return None

    def get_child_context(self, record: Record, context: Context | None) -> Context:
        return {"user_id": record["user_id"]}


class BodyMeasurementStream(WhoopStream):
    """Height, weight and max heart rate (one record), keyed by the profile's `user_id`."""

    name = "body_measurement"
    path = "/v2/user/measurement/body"
    primary_keys = ("user_id",)
    replication_key = None
    records_jsonpath = "$"
    parent_stream_type = ProfileStream

    def get_new_paginator(self) -> None:
        return None

    def post_process(self, row: Record, context: Context | None = None) -> Record:
        return {**row, "user_id": context["user_id"]} if context else row


class CyclesStream(WhoopCollectionStream):
    """Physiological cycles (day strain)."""

    name = "cycles"
    path = "/v2/cycle"
    primary_keys = ("id",)
    parent_stream_type = ProfileStream


class SleepsStream(WhoopCollectionStream):
    """Sleeps and naps."""

    name = "sleeps"
    path = "/v2/activity/sleep"
    primary_keys = ("id",)
    parent_stream_type = ProfileStream


class RecoveriesStream(WhoopCollectionStream):
    """Recoveries, one per cycle."""

    name = "recoveries"
    path = "/v2/recovery"
    primary_keys = ("cycle_id",)
    progress_time_field = "created_at"
    parent_stream_type = ProfileStream


class WorkoutsStream(WhoopCollectionStream):
    """Workouts."""

    name = "workouts"
    path = "/v2/activity/workout"
    primary_keys = ("id",)
    parent_stream_type = ProfileStream


STREAM_TYPES: tuple[type[WhoopStream], ...] = (
    ProfileStream,
    BodyMeasurementStream,
    CyclesStream,
    SleepsStream,
    RecoveriesStream,
    WorkoutsStream,
)
