"""Deletions by reconciliation: what a complete read of the lookback window says about records seen before.

WHOOP's collections never show a deletion, but every incremental run reads the lookback window in full. Per
athlete partition and collection stream, Singer state keeps the records seen inside the window (committed with
the bookmark, so only after the target flushed):

    "reconciliation": {"seen": {"<key>": "<time>"}}      recoveries: {"<cycle id>": ["<time>", "<sleep id>"]}

`key` is what the single-record endpoint takes and `time` what WHOOP's window filter follows: a record's
`start` (recoveries have none: their `created_at`, hours after their sleep ended). A key seen before whose
time lies inside this run's window, and that this complete read did not return, is a *suspect*; only a 404
from the single-record endpoint confirms its deletion. Anything else (it moved, it changed, an error)
deletes nothing; an unanswered suspect stays to be asked again next run, one that answered is settled (a
record the window no longer returns is not asked about again). A read that did not complete reconciles
nothing.

Bound: at most MAX_SEEN keys per partition and stream, the newest by time, and only those the next run's
window can reach (start ≥ next bookmark - lookback). With the default 14-day lookback that is about 15-30 keys
per stream (2-3 KB of state per athlete); the cap only bites past ~500 days of lookback (workouts run up to a
few a day), and then the oldest records of the window are not reconciled.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing as t

from tap_whoop.timestamps import format_datetime, parse_datetime

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

STATE_KEY = "reconciliation"
MAX_SEEN = 1000


@dataclasses.dataclass(frozen=True)
class Seen:
    """A record as reconciliation remembers it."""

    key: str  # what the single-record endpoint takes (recoveries: the cycle id)
    time: dt.datetime  # what the window filter follows (start; recoveries: created_at)
    deletion_id: str  # how deleted_records names it (recoveries: the UUID of its sleep)

    def to_state(self) -> str | list[str]:
        time = format_datetime(self.time)
        return time if self.deletion_id == self.key else [time, self.deletion_id]

    @classmethod
    def from_state(cls, key: str, value: str | list[str]) -> Seen:
        if isinstance(value, list):
            return cls(key, parse_datetime(value[0]), str(value[1]))
        return cls(key, parse_datetime(value), key)


def load(partition_state: Mapping[str, t.Any]) -> dict[str, Seen]:
    """What the previous complete run saw (nothing before the first one, or if the state is unreadable)."""
    seen = (partition_state.get(STATE_KEY) or {}).get("seen") or {}
    loaded = {}
    for key, value in seen.items() if isinstance(seen, dict) else ():
        try:
            loaded[str(key)] = Seen.from_state(str(key), value)
        except (ValueError, TypeError, IndexError):
            continue  # a hand-edited entry: forget it rather than fail the run
    return loaded


def dump(seen: Iterable[Seen]) -> dict[str, t.Any]:
    """The state to keep: bounded to the MAX_SEEN newest."""
    newest = sorted(seen, key=lambda s: (s.time, s.key), reverse=True)[:MAX_SEEN]
    return {"seen": {s.key: s.to_state() for s in sorted(newest, key=lambda s: (s.time, s.key))}}


def suspects(
    previous: Mapping[str, Seen],
    returned: Mapping[str, Seen],
    window_start: dt.datetime | None,
    window_end: dt.datetime | None,
) -> list[Seen]:
    """Keys seen before, inside this window ([start, end) of `time`), that this complete read missed."""
    return [
        seen
        for key, seen in previous.items()
        if key not in returned
        and (window_start is None or seen.time >= window_start)
        and (window_end is None or seen.time < window_end)
    ]


def next_seen(
    previous: Mapping[str, Seen],
    observed: Mapping[str, Seen],
    gone: Iterable[str],
    keep_from: dt.datetime | None,
) -> list[Seen]:
    """What to remember: this run's observations, plus earlier entries neither observed nor confirmed gone
    (an unanswered suspect, a record outside this window), as far back as the next window reaches."""
    gone = set(gone)
    entries = {k: s for k, s in previous.items() if k not in gone}
    entries.update(observed)
    return [s for s in entries.values() if keep_from is None or s.time >= keep_from]
