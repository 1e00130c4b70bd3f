"""WHOOP API v2 streams: one small class per endpoint, the app's athlete registry, `deleted_records`.

Every WHOOP stream is read per athlete: its context (and so its state partition) is `{"user_id": ...}`, and
the athlete's own authenticator signs its requests. The tap's scheduler (`tap_whoop.sync.scheduler`) decides
which athlete and stream goes when; the streams know only how to read one partition. `deleted_records`
comes after an athlete's four collections: it emits the deletions they confirmed and those webhooks announced.
"""

from __future__ import annotations

import datetime as dt
import typing as t

from singer_sdk import typing as th
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.streams import Stream

from tap_whoop import whoop
from tap_whoop.deletions.feed import CURSOR_KEY
from tap_whoop.deletions.reconcile import Seen
from tap_whoop.streams import signals
from tap_whoop.streams.base import OfTheRun, WhoopStream
from tap_whoop.streams.incremental import WhoopCollectionStream
from tap_whoop.streams.snapshots import WhoopSnapshotStream
from tap_whoop.timestamps import format_datetime, parse_datetime

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from singer_sdk.helpers.types import Context, Record


class ProfileStream(WhoopSnapshotStream):
    """The athlete's basic profile (one record)."""

    name = "profile"
    path = whoop.PROFILE_PATH

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        fresh = self.run.fresh_profile(int(context["user_id"])) if context else None
        if fresh is not None:
            yield dict(fresh)  # read moments ago to learn whose tokens these are: no second call
            return
        yield from super().get_records(context)


class BodyMeasurementStream(WhoopSnapshotStream):
    """Height, weight and max heart rate (one record), keyed by the athlete's `user_id`."""

    name = "body_measurement"
    path = "/v2/user/measurement/body"

    def post_process(self, row: Record, context: Context | None = None) -> Record:
        return {**row, "user_id": context["user_id"]} if context else row


class CyclesStream(WhoopCollectionStream):
    """Physiological cycles (day strain)."""

    name = "cycles"
    path = "/v2/cycle"
    record_path = "/v2/cycle/{id}"
    primary_keys = ("id",)


class SleepsStream(WhoopCollectionStream):
    """Sleeps and naps."""

    name = "sleeps"
    path = "/v2/activity/sleep"
    record_path = "/v2/activity/sleep/{id}"
    primary_keys = ("id",)

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        # The cycle of every sleep read this run, so a recovery named by its sleep needs no sleep lookup.
        self.cycle_ids: dict[str, int] = {}

    def post_process(self, row: Record, context: Context | None = None) -> Record | None:
        if row.get("id") and row.get("cycle_id") is not None:
            self.cycle_ids[str(row["id"])] = row["cycle_id"]
        return super().post_process(row, context)  # which drops the boundary record a turn already emitted

    def note(self, record: dict[str, t.Any]) -> dict[str, t.Any]:
        # Every sleep this stream emits (listed, looked up or named by a webhook) may need its signals.
        stream = self.run.streams.get(SleepSignalsStream.name)
        context = self._partition_context
        if isinstance(stream, SleepSignalsStream) and stream.wanted and context is not None:
            signals.offer(stream.get_context_state(context), record, history=self.turn.is_backfill)
        return super().note(record)


class RecoveriesStream(WhoopCollectionStream):
    """Recoveries, one per cycle; WHOOP's webhooks and deleted_records name one by its sleep's UUID."""

    name = "recoveries"
    path = "/v2/recovery"
    record_path = "/v2/cycle/{id}/recovery"
    primary_keys = ("cycle_id",)
    progress_time_field = "created_at"
    # A recovery has no start: reconciliation follows its created_at, which trails its sleep by hours.
    reconcile_margin = dt.timedelta(days=1)
    # "A recovery is deleted when its associated sleep is deleted" (WHOOP).
    deleted_with = "sleeps"

    def seen_of(self, record: Record) -> Seen:
        return Seen(str(record["cycle_id"]), parse_datetime(record["created_at"]), str(record["sleep_id"]))

    def fetch_for_event(self, record_id: str, context: Context) -> dict[str, t.Any] | None:
        sleeps = self.run.streams["sleeps"]
        cycle_id = sleeps.cycle_ids.get(record_id) if isinstance(sleeps, SleepsStream) else None
        if cycle_id is None:
            sleep = self.fetch_one(SleepsStream.record_path.format(id=record_id), context)
            if sleep is None:
                return None  # its sleep is gone, and the recovery with it
            cycle_id = sleep["cycle_id"]
        return self.fetch_one(self.record_path.format(id=cycle_id), context)


class SleepSignalsStream(WhoopStream):
    """A sleep's raw signal stream, WHOOP's samples verbatim in `stream`: per sleep (per fetched version) one
    record each SAMPLES_PER_RECORD samples (`part` of `parts`). Fetched for each new or edited sleep the
    sleeps stream emits (`tap_whoop.streams.signals`); the scheduler says when (fresh sleeps after
    everyone's incremental reads, history within the budget)."""

    name = "sleep_signals"
    path = "/v2/activity/sleep/{sleepId}/stream"  # named as in WHOOP's spec
    primary_keys = ("sleep_id", "part")
    replication_key = None
    # A night at 1 s is ~28,800 samples: the SDK conforms the record's own fields, not each sample's.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.ROOT_ONLY
    schema = th.PropertiesList(
        # A string, as the sleeps stream's `id`: loaders then give both columns one type (target-postgres
        # makes a `uuid` format a uuid column, which a text id does not join without a cast).
        th.Property("sleep_id", th.StringType, required=True, description="The sleep (its UUID)."),
        th.Property(
            "part",
            th.IntegerType,
            required=True,
            description="Which record of the stream this is, from 0 (SAMPLES_PER_RECORD samples each).",
        ),
        th.Property(
            "parts",
            th.IntegerType,
            required=True,
            description="How many records this version of the stream has: an older version's later parts are "
            "stale.",
        ),
        th.Property("user_id", th.IntegerType, required=True, description="The athlete's WHOOP user id."),
        th.Property(
            "sleep_updated_at",
            th.DateTimeType,
            required=True,
            description="The sleep's `updated_at` this stream belongs to (an edit brings a new stream).",
        ),
        th.Property("algorithm_version", th.StringType),
        th.Property(
            "sample_count", th.IntegerType, required=True, description="Samples in this record's `stream`."
        ),
        th.Property(
            "stream",
            # Samples as WHOOP serves them (timestamp, hr, skin_temp, board_temp, battery_temp, is_sleeping,
            # is_charging; the types not requested absent), described as plain objects so that neither the
            # tap nor a validating target walks every sample.
            th.ArrayType(th.ObjectType(additional_properties=True)),
            required=True,
            description="WHOOP's samples, verbatim.",
        ),
    ).to_dict()

    # Set by the scheduler before each sync: which queue, and how many calls at most.
    history = False
    max_calls: int | None = None

    @property
    def wanted(self) -> bool:
        """Whether sleeps are queued at all (`sleep_signals` on and this stream selected)."""
        return bool(self.config.get("sleep_signals", True)) and self.selected

    def pending(self, context: Context, *, history: bool) -> int:
        return len(signals.due(self.get_context_state(context), history=history))

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        if context is None or not self.wanted:
            return
        self._partition_context = context
        yield from signals.fetch(self, context, history=self.history, max_calls=self.max_calls)


class WorkoutsStream(WhoopCollectionStream):
    """Workouts."""

    name = "workouts"
    path = "/v2/activity/workout"
    record_path = "/v2/activity/workout/{id}"
    primary_keys = ("id",)


class AthletesStream(OfTheRun):
    """The app's athletes and their enrollment status, from the token store (no WHOOP call, never a token)."""

    name = "athletes"
    per_athlete = False
    primary_keys = ("user_id",)
    replication_key = None
    schema = th.PropertiesList(
        th.Property("user_id", th.IntegerType, required=True),
        th.Property("status", th.StringType, required=True, description="ok, needs_reauthorization, ..."),
        th.Property("status_reason", th.StringType, description="Why, and the fix (one line)."),
        th.Property("enrolled_at", th.DateTimeType),
        th.Property("last_synced_at", th.DateTimeType, description="End of the last complete sync."),
    ).to_dict()

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        self.run.athlete_contexts()  # pending tokens adopted first, even when this stream goes first
        for athlete in self.run.registry.athletes():
            record = athlete.as_json()
            record.pop("name")  # names live in `profile`, where a purge finds them
            yield record


class DeletedRecordsStream(OfTheRun):
    """One record per deletion: confirmed by reconciliation (a 404 for a record the window no longer returns)
    or announced by a WHOOP `*.deleted` webhook (events stored by `tap-whoop serve`). Raw tables keep the last
    version WHOOP served; dbt leaves deleted records out of staging and marts.

    Confirmed deletions wait in this stream's partition state (`pending`), put there by the collections in the
    same step that drops them from reconciliation, and leave it only once emitted: a crash between the two
    re-emits them (the target upserts on stream and id), it never loses one.
    """

    name = "deleted_records"
    # The SDK types it as any Tap; ours carries the run's webhook events (it calls nothing).
    primary_keys = ("stream", "id")
    replication_key = None
    schema = th.PropertiesList(
        th.Property(
            "stream",
            th.StringType,
            required=True,
            allowed_values=["cycles", "sleeps", "recoveries", "workouts"],
            description="The stream the deleted record belonged to.",
        ),
        th.Property(
            "id",
            th.StringType,
            required=True,
            description="The deleted record: the UUID of a sleep or workout; for a recovery the UUID of its "
            "sleep (as WHOOP's webhooks name it); for a cycle its id.",
        ),
        th.Property("user_id", th.IntegerType, required=True, description="The athlete's WHOOP user id."),
        th.Property(
            "deleted_at", th.DateTimeType, required=True, description="When the deletion was detected."
        ),
        th.Property(
            "detected_by",
            th.StringType,
            required=True,
            allowed_values=["reconciliation", "webhook"],
            description="`reconciliation` (the tap confirmed it) or `webhook` (WHOOP announced it).",
        ),
        th.Property(
            "trace_id", th.StringType, description="The webhook's trace_id; null for reconciliation."
        ),
    ).to_dict()

    @property
    def partitions(self) -> list[dict[str, t.Any]] | None:
        # A sync without a context (the SDK's dry run) covers every enrolled athlete.
        return list(self.run.athlete_contexts())

    def pending(self, context: Context) -> set[tuple[str, str]]:
        """(stream, id) of the deletions waiting to be emitted for this partition."""
        return {(r["stream"], r["id"]) for r in self.get_context_state(context).get("pending", [])}

    def enqueue(self, context: Context, rows: list[dict[str, t.Any]]) -> None:
        """Queue confirmed deletions (called by a collection in the step that commits its own new state)."""
        if not rows:
            return
        pending = self.get_context_state(context).setdefault("pending", [])
        known = {(r["stream"], r["id"]) for r in pending}
        pending.extend(r for r in rows if (r["stream"], r["id"]) not in known)

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        if context is None:
            return
        state = self.get_context_state(context)
        feed = self.run.event_feed
        cursor = int(state.get(CURSOR_KEY) or 0)
        rows = {(r["stream"], r["id"]): r for r in state.get("pending", [])}
        for stored in feed.events(int(context["user_id"]), cursor):
            event = stored.event
            if event.action == "deleted":
                # WHOOP's own word wins over the tap's later confirmation: earlier time, and its trace_id.
                rows[(event.stream, event.id)] = {
                    "stream": event.stream,
                    "id": event.id,
                    "user_id": event.user_id,
                    "deleted_at": format_datetime(stored.received_at),
                    "detected_by": "webhook",
                    "trace_id": event.trace_id,
                }
        yield from rows.values()
        # Every row above has been written: only now may they leave the state.
        remaining = [r for r in state.get("pending", []) if (r["stream"], r["id"]) not in rows]
        if remaining:
            state["pending"] = remaining
        else:
            state.pop("pending", None)
        state[CURSOR_KEY] = feed.cursor_after(cursor)


STREAM_TYPES: tuple[type[Stream], ...] = (
    ProfileStream,
    BodyMeasurementStream,
    CyclesStream,
    SleepsStream,
    RecoveriesStream,
    WorkoutsStream,
    DeletedRecordsStream,
    SleepSignalsStream,
    AthletesStream,
)
