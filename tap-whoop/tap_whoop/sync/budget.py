"""The app's daily request budget across runs: what is left for work that can wait (history, snapshots).

WHOOP reports only the binding quota in `X-RateLimit-Remaining`, so while the per-minute window binds the
daily remaining is invisible. The tap therefore keeps a ledger of its own runs of the last 24 hours in Singer
state (`app_usage`: start, calls, discretionary and incremental calls), and lets discretionary calls spend
only what the day leaves after every athlete's incremental runs:

    discretionary calls in 24 h + this turn  <=  daily limit - incremental calls per run x runs per day

where the incremental cost is this run's (measured) and the runs per day come from the ledger's spacing (the
3-hourly schedule: 8; at most 24, at least 1), or, when more, the incremental calls the ledger's runs of the
last 24 hours measured (with `webhooks`, one run a day also sweeps). Independently, the estimated
remaining quota (the limit minus the ledger's calls, or WHOOP's own figure when the daily quota binds) must
still cover the next run's incrementals after the turn. Rolling or fixed daily window, neither then leaves an
athlete's fresh data without budget; what is not spent on history today is spent tomorrow.
"""

from __future__ import annotations

import itertools
import statistics
import time
import typing as t

if t.TYPE_CHECKING:
    from tap_whoop.client.pacing import RateLimitPacer

LEDGER_KEY = "app_usage"
DAY_SECONDS = 86400.0
DEFAULT_RUNS_PER_DAY = 8  # the 3-hourly schedule
MAX_RUNS_PER_DAY = 24


class DailyBudget:
    """One run's view of the app's daily quota; `save()` adds the run to the ledger in `state`."""

    def __init__(
        self, state: dict[str, t.Any], pacer: RateLimitPacer, clock: t.Callable[[], float] = time.time
    ) -> None:
        self.state = state
        self.pacer = pacer
        self.started = clock()
        self._first_request = pacer.requests
        self.previous = [
            run
            for run in (state.get(LEDGER_KEY) or {}).get("runs", [])
            if isinstance(run, dict) and self.started - float(run.get("at", 0)) < DAY_SECONDS
        ]
        self.incremental_per_run = 0
        self.discretionary = 0

    @property
    def calls(self) -> int:
        return self.pacer.requests - self._first_request

    @property
    def runs_per_day(self) -> float:
        starts = sorted([float(run["at"]) for run in self.previous] + [self.started])
        gaps = [b - a for a, b in itertools.pairwise(starts) if b > a]
        if not gaps:
            return DEFAULT_RUNS_PER_DAY
        return min(MAX_RUNS_PER_DAY, max(1.0, DAY_SECONDS / statistics.median(gaps)))

    @property
    def daily_limit(self) -> int | None:
        policy = self.pacer.long_policy
        if policy is None:
            return None
        return round(policy.limit * DAY_SECONDS / policy.window_seconds)

    def remaining(self) -> int | None:
        """The estimated calls left of the daily quota now (None: WHOOP reports no daily quota)."""
        limit = self.daily_limit
        if limit is None:
            return None
        estimate = limit - sum(int(run.get("calls", 0)) for run in self.previous) - self.calls
        reported = self.pacer.long_remaining
        return min(estimate, reported) if reported is not None else estimate

    @property
    def reserve(self) -> float:
        """A day of every athlete's incremental runs: this run's cost x the runs a day, or what the ledger's
        runs of the last 24 hours measured when that is more (with `webhooks` a sweep run costs several
        times the runs between sweeps, and the reserve must hold the sweep's calls)."""
        measured = sum(int(run.get("incremental", 0)) for run in self.previous) + self.incremental_per_run
        return max(self.incremental_per_run * self.runs_per_day, measured)

    def allows(self, cost: int) -> bool:
        """Whether `cost` discretionary calls fit without taking any athlete's incremental runs' budget."""
        limit = self.daily_limit
        if limit is None:
            return True
        reserve = self.reserve
        spent = sum(int(run.get("discretionary", 0)) for run in self.previous) + self.discretionary
        remaining = self.remaining()
        fits_the_day = spent + cost + reserve <= limit
        leaves_next_run = remaining is None or remaining - cost >= self.incremental_per_run
        return fits_the_day and leaves_next_run

    def spend(self, calls: int) -> None:
        self.discretionary += calls

    def describe(self) -> str:
        remaining = self.remaining()
        left = "unknown" if remaining is None else str(max(0, remaining))
        return (
            f"about {left} of the app's {self.daily_limit} daily calls left; every athlete's incrementals "
            f"need {self.incremental_per_run} per run x {self.runs_per_day:.1f} runs a day"
        )

    def save(self) -> None:
        # Whole seconds: a float in the state breaks targets on singer-sdk 0.54 (target-postgres), which read
        # JSON numbers as Decimal and cannot write them back.
        run = {
            "at": int(self.started),
            "calls": self.calls,
            "discretionary": self.discretionary,
            "incremental": self.incremental_per_run,
        }
        self.state[LEDGER_KEY] = {"runs": [*self.previous, run]}
