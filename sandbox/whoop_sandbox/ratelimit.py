"""WHOOP's per-application rate limits: fixed windows, reported in X-RateLimit-* headers."""

from __future__ import annotations

import math
import threading
import time


def _window(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


class RateLimiter:
    """Fixed windows per client id; a window opens with the first request after the previous one closed."""

    def __init__(self, limits: list[tuple[int, float]], clock=time.monotonic):
        self.limits = [(int(limit), float(window)) for limit, window in limits]
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, list[list[float]]] = {}

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()

    def hit(self, client_id: str, record: dict | None = None) -> tuple[bool, dict[str, str]]:
        """Count one request; returns (allowed, headers). Rejected requests are not counted.

        `record` (a request-log entry) gets `rate_window`: the number of the shortest window the request
        fell in (0, 1, ... per client), so tests can count the windows a run needed.
        """
        if not self.limits:
            return True, {}
        now = self._clock()
        with self._lock:
            windows = self._windows.setdefault(client_id, [[now, 0, 0] for _ in self.limits])
            for state, (_, seconds) in zip(windows, self.limits, strict=True):
                if now >= state[0] + seconds:
                    state[0], state[1], state[2] = now, 0, state[2] + 1
            shortest = min(range(len(self.limits)), key=lambda i: self.limits[i][1])
            if record is not None:
                record["rate_window"] = int(windows[shortest][2])
            exhausted = [i for i, (limit, _) in enumerate(self.limits) if windows[i][1] >= limit]
            allowed = not exhausted
            if allowed:
                for state in windows:
                    state[1] += 1

            def reset(i: int) -> int:
                return max(0, math.ceil(windows[i][0] + self.limits[i][1] - now))

            if exhausted:
                tightest = max(exhausted, key=reset)
            else:
                tightest = min(
                    range(len(self.limits)),
                    key=lambda i: (self.limits[i][0] - windows[i][1], self.limits[i][1]),
                )
            remaining = max(0, self.limits[tightest][0] - int(windows[tightest][1]))
            headers = {
                "X-RateLimit-Limit": ", ".join(
                    [str(self.limits[tightest][0])]
                    + [f"{limit};window={_window(w)}" for limit, w in self.limits]
                ),
                "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": str(reset(tightest)),
            }
        return allowed, headers
