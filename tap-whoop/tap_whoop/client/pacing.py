"""Client-side pacing from WHOOP's `X-RateLimit-*` response headers.

WHOOP limits each *app* (100 requests/minute and 10,000/day by default) and reports the binding quota on every
response, in the IETF draft `RateLimit` header style:

    X-RateLimit-Limit: 100, 100;window=60, 10000;window=86400
    X-RateLimit-Remaining: 98
    X-RateLimit-Reset: 3            (seconds until the binding window resets)

The pacer spends the remaining quota at full speed and, once it is used up, sleeps until the reported reset,
so a backfill runs at the limit without drawing a 429. Because the server reports the app-wide count, other
processes sharing the app (parallel runs, other athletes) are accounted for too. A reset further away than
the shortest window means a long (daily) quota is spent: waiting hours inside a scheduled job helps nobody,
so the pacer raises `RateLimitBudgetExhausted` and the tap stops cleanly instead.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

# If the server gives no window at all, treat waits longer than this as "the long quota is spent".
DEFAULT_MAX_WAIT_SECONDS = 120.0


class RateLimitBudgetExhausted(Exception):
    """A long-window (daily) quota is used up; requests may resume at `resume_at`."""

    def __init__(self, resume_at: dt.datetime) -> None:
        self.resume_at = resume_at
        super().__init__(f"WHOOP API request budget is spent until {resume_at:%Y-%m-%dT%H:%M:%SZ}")


@dataclass(frozen=True)
class RatePolicy:
    limit: int
    window_seconds: float


def parse_policies(limit_header: str) -> list[RatePolicy]:
    """Parse `100, 100;window=60, 10000;window=86400` into its windowed policies."""
    policies = []
    for item in limit_header.split(","):
        quota, _, params = item.strip().partition(";")
        window = dict(p.strip().partition("=")[::2] for p in params.split(";") if p.strip()).get("window")
        if window is not None:
            policies.append(RatePolicy(int(quota), float(window)))
    return sorted(policies, key=lambda p: p.window_seconds)


class RateLimitPacer:
    """Shared by every stream of one tap run (the quota belongs to the app, not to a stream). Thread-safe."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        reset_margin_seconds: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.logger = logger
        # X-RateLimit-Reset has one-second resolution: a small margin keeps us from knocking just before the
        # window really resets.
        self.reset_margin_seconds = reset_margin_seconds
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._remaining: int | None = None
        self._reset_at: float | None = None
        self.policies: list[RatePolicy] = []
        self.waited_seconds = 0.0
        self.requests = 0  # attempts paced by this pacer (retries included: each counts against the quota)
        # What WHOOP said is left of the long (daily) quota, when that quota was the binding one; else None.
        self.long_remaining: int | None = None

    @property
    def max_wait_seconds(self) -> float:
        """Longest wait worth sleeping through: the shortest window (plus the margin)."""
        if not self.policies:
            return DEFAULT_MAX_WAIT_SECONDS
        return self.policies[0].window_seconds + 1 + self.reset_margin_seconds

    @property
    def long_policy(self) -> RatePolicy | None:
        """The longest window WHOOP reports (the daily quota), if it reports more than one."""
        return self.policies[-1] if len(self.policies) > 1 else None

    def sustained_rate(self) -> float | None:
        """Requests per second the shortest window allows, if the server told us."""
        if not self.policies:
            return None
        policy = self.policies[0]
        return policy.limit / policy.window_seconds

    def wait_turn(self) -> None:
        """Block until a request may be sent without exceeding the quota (call before every attempt)."""
        with self._lock:
            self.requests += 1
            if self._remaining is None:
                return
            if self._remaining > 0:
                self._remaining -= 1  # count the request now, so concurrent callers see the quota shrink
                return
            wait = (self._reset_at or 0.0) - self._clock()
            if wait > self.max_wait_seconds:
                self.requests -= 1  # not sent
                raise RateLimitBudgetExhausted(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=wait))
            if wait > 0:
                self.logger.info("Rate limit reached; pausing %.1f s until the window resets.", wait)
                self._sleep(wait)
                self.waited_seconds += wait
            self._remaining = None  # unknown until the next response reports it

    def observe(self, status_code: int, headers: Mapping[str, str]) -> None:
        """Update the quota from a response (any status: errors carry the headers too)."""
        remaining = _to_number(headers.get("X-RateLimit-Remaining"))
        reset = _to_number(headers.get("X-RateLimit-Reset"))
        if status_code == 429:
            remaining = 0
            reset = reset if reset is not None else _to_number(headers.get("Retry-After"))
            if reset is None:
                reset = self.policies[0].window_seconds if self.policies else 60.0
        with self._lock:
            if limit_header := headers.get("X-RateLimit-Limit"):
                try:
                    self.policies = parse_policies(limit_header) or self.policies
                except ValueError:
                    self.logger.warning("Ignoring unparseable X-RateLimit-Limit header: %r", limit_header)
            if remaining is not None:
                self._remaining = int(remaining)
                self._reset_at = self._clock() + (reset or 0.0) + self.reset_margin_seconds
                long_binding = self.long_policy is not None and (reset or 0.0) > self.max_wait_seconds
                self.long_remaining = int(remaining) if long_binding else None


def _to_number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
