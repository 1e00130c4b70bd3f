"""The sandbox's clock: the one "now" its history, tokens, codes, rate windows, changes and request log read.

A clock is any callable returning the current time in epoch seconds. `RealClock(now)` (the default) starts at
`now` and advances with the machine's monotonic clock, so a sandbox pinned to a date still times out, expires
and resets windows in real time; `ManualClock(now)` stands still until a test moves it, so expiry and window
resets need no sleeping and no luck.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], float]


def _epoch(when: datetime) -> float:
    if when.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    return when.timestamp()


class RealClock:
    """Starts at `now` (default: the machine's current time) and advances in real time from there."""

    def __init__(self, now: datetime | None = None):
        self._start = time.time() if now is None else _epoch(now)
        self._t0 = time.monotonic()

    def __call__(self) -> float:
        return self._start + (time.monotonic() - self._t0)


class ManualClock:
    """Stands at `now` until `advance` or `set` moves it (thread-safe: the server's handlers read it too)."""

    def __init__(self, now: datetime):
        self._now = _epoch(now)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float | timedelta) -> float:
        """Move forward; returns the new time (epoch seconds)."""
        step = seconds.total_seconds() if isinstance(seconds, timedelta) else float(seconds)
        if step < 0:
            raise ValueError("a clock only moves forward")
        with self._lock:
            self._now += step
            return self._now

    def set(self, when: datetime) -> None:
        target = _epoch(when)
        with self._lock:
            if target < self._now:
                raise ValueError("a clock only moves forward")
            self._now = target


def as_datetime(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, UTC)
