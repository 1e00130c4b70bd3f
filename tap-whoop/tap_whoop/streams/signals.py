"""Which sleeps' signal streams are still to be fetched, and fetching them: one call per (sleep, updated_at).

The sleeps stream offers every sleep it emits; its lookback window re-emits the same sleeps every run, so
only a new or edited sleep (an `updated_at` not fetched yet) is queued. The queue (`pending`) and what was
fetched (`fetched`: id -> [updated_at, start], only for sleeps the sleeps stream's window can still re-read,
so the state stays bounded) live in the athlete's `sleep_signals` partition of the tap's state. An entry
leaves the queue only after its record was written, so a sleep queued before an interruption is fetched by
the next run (and one whose queueing no STATE message carried is re-read by the sleeps stream, whose bookmark
did not move either). A sleep still PENDING_SCORE waits for its score (which changes its `updated_at`
anyway), so a night costs one call, not two. Sleeps that history turns read are queued as history: the
scheduler fetches those after everyone's fresh data, as the daily budget allows. A sleep deleted meanwhile
(404) leaves the queue.
"""

from __future__ import annotations

import datetime as dt
import typing as t

from tap_whoop import whoop
from tap_whoop.errors import RecordLookupRefused
from tap_whoop.timestamps import parse_datetime

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from singer_sdk.helpers.types import Context

    from tap_whoop.streams.base import WhoopStream

PENDING = "pending"
FETCHED = "fetched"
# A sleep WHOOP has not scored yet changes (`updated_at`) once it is: fetched then, one call instead of two.
PENDING_SCORE = "PENDING_SCORE"
# WHOOP's window returns a sleep that ends inside it: one that started a little earlier is still re-read.
KEEP_MARGIN = dt.timedelta(days=1)
# Samples per record: a night at 1 s sampling (~28,800 samples, ~4 MiB of JSON) in one record is a row
# target-duckdb's CSV COPY refuses (DuckDB reads lines of at most 2 MiB) and loaders hold whole in memory.
# An hour at 1 s is ~0.5 MiB; a night sampled every 8 s or more stays one record.
SAMPLES_PER_RECORD = 3_600


def offer(state: dict[str, t.Any], sleep: Mapping[str, t.Any], *, history: bool) -> None:
    """Queue `sleep` unless its current version's signals were fetched or are queued already."""
    sleep_id, updated_at = str(sleep.get("id") or ""), sleep.get("updated_at")
    if not sleep_id or not isinstance(updated_at, str) or sleep.get("score_state") == PENDING_SCORE:
        return
    fetched = (state.get(FETCHED) or {}).get(sleep_id)
    if fetched and fetched[0] == updated_at:
        return
    pending = state.setdefault(PENDING, [])
    for entry in pending:
        if entry["id"] == sleep_id:
            # An edit replaces the queued version; a fresh offer of a queued history sleep makes it fresh.
            entry.update(
                updated_at=updated_at, start=sleep.get("start"), history=entry["history"] and history
            )
            return
    pending.append(
        {"id": sleep_id, "updated_at": updated_at, "start": sleep.get("start"), "history": history}
    )


def due(state: Mapping[str, t.Any], *, history: bool) -> list[dict[str, t.Any]]:
    """The queued sleeps of one kind (fresh or history), oldest offer first."""
    return [dict(entry) for entry in state.get(PENDING) or [] if entry["history"] == history]


def settle(
    state: dict[str, t.Any], entry: Mapping[str, t.Any], keep_from: dt.datetime | None, *, fetched: bool
) -> None:
    """`entry` is done (fetched, or gone): out of the queue, unless an edit queued a newer version meanwhile;
    remembered while the sleeps stream's window can re-read it."""
    remaining = [
        e
        for e in state.get(PENDING) or []
        if (e["id"], e["updated_at"]) != (entry["id"], entry["updated_at"])
    ]
    if remaining:
        state[PENDING] = remaining
    else:
        state.pop(PENDING, None)
    start = entry.get("start")
    if fetched and isinstance(start, str) and (keep_from is None or parse_datetime(start) >= keep_from):
        state.setdefault(FETCHED, {})[entry["id"]] = [entry["updated_at"], start]


def prune(state: dict[str, t.Any], keep_from: dt.datetime | None) -> None:
    """Forget fetched sleeps the sleeps stream's window no longer re-reads (only a webhook brings those back,
    and with a new `updated_at`)."""
    if keep_from is None or FETCHED not in state:
        return
    state[FETCHED] = {k: v for k, v in state[FETCHED].items() if parse_datetime(v[1]) >= keep_from}


def keep_from(sleeps_state: Mapping[str, t.Any], lookback_days: int) -> dt.datetime | None:
    """The oldest sleep start the sleeps stream's next window may return (None before its first bookmark)."""
    bookmark = sleeps_state.get("replication_key_value")
    if not bookmark:
        return None
    return parse_datetime(bookmark) - dt.timedelta(days=lookback_days) - KEEP_MARGIN


def fetch(
    stream: WhoopStream, context: Context, *, history: bool, max_calls: int | None
) -> Iterator[dict[str, t.Any]]:
    """Fetch the queued streams of one kind (at most `max_calls`), a record per SAMPLES_PER_RECORD samples
    of each (`part` of `parts`); a sleep leaves the queue once its last record is written (the generator
    resumes only then)."""
    state = stream.get_context_state(context)
    sleeps = stream.run.streams["sleeps"]
    oldest = keep_from(sleeps.get_context_state(context), int(stream.config.get("lookback_days", 0)))
    types = list(stream.config.get("sleep_signal_types") or whoop.SLEEP_SIGNAL_TYPES)
    user_id = int(context["user_id"])
    for entry in due(state, history=history)[:max_calls]:
        path = stream.path.format(sleepId=entry["id"])
        try:
            payload = stream.fetch_one(path, context, params={"types": types})
        except RecordLookupRefused as exc:
            stream.logger.warning("sleep_signals: skipping sleep %s (%s).", entry["id"], exc)
            settle(state, entry, oldest, fetched=False)
            continue
        if payload is None:
            stream.logger.info("sleep_signals: sleep %s no longer exists; nothing to fetch.", entry["id"])
            settle(state, entry, oldest, fetched=False)
            continue
        samples = payload.get("stream") or []
        # What WHOOP adds beside the samples: post_process keeps it in unmodelled_fields.
        extra = {k: v for k, v in payload.items() if k not in ("stream", "algorithm_version")}
        parts = max(1, -(-len(samples) // SAMPLES_PER_RECORD))
        for part in range(parts):
            chunk = samples[part * SAMPLES_PER_RECORD : (part + 1) * SAMPLES_PER_RECORD]
            yield {
                **extra,
                "sleep_id": entry["id"],
                "part": part,
                "parts": parts,
                "user_id": user_id,
                "sleep_updated_at": entry["updated_at"],
                "algorithm_version": payload.get("algorithm_version"),
                "sample_count": len(chunk),
                "stream": chunk,
            }
        settle(state, entry, oldest, fetched=True)
    prune(state, oldest)
