"""Failures on demand: queued faults consumed by matching requests, plus an optional seeded random rate."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from random import Random

FAULT_KINDS = frozenset({"500", "502", "503", "slow", "timeout", "drop", "malformed_json", "next_token_loop"})
DEFAULT_DELAYS = {"slow": 1.0, "timeout": 10.0}


@dataclass
class Fault:
    kind: str
    path_prefix: str
    remaining: int
    delay: float


class FaultPlan:
    def __init__(self, seed: int, rate: float = 0.0, rate_kinds=("500", "502", "503")):
        self._lock = threading.Lock()
        self._queue: list[Fault] = []
        self._random = Random(f"whoop-sandbox-faults:{seed}")
        self.rate = rate
        self.rate_kinds = tuple(rate_kinds)
        self.rate_prefix = "/developer/"

    def inject(self, kind: str, path_prefix: str, count: int, delay: float | None) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if count < 1:
            raise ValueError("count must be at least 1")
        fault = Fault(kind, path_prefix, count, DEFAULT_DELAYS.get(kind, 0.0) if delay is None else delay)
        with self._lock:
            self._queue.append(fault)
        return fault

    def set_rate(self, rate: float, kinds=("500", "502", "503"), path_prefix: str = "/developer/") -> None:
        unknown = set(kinds) - FAULT_KINDS
        if unknown or not 0 <= rate <= 1:
            raise ValueError("rate must be within [0, 1] and kinds known fault kinds")
        with self._lock:
            self.rate, self.rate_kinds, self.rate_prefix = rate, tuple(kinds), path_prefix

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self.rate = 0.0

    def pending(self) -> list[dict]:
        with self._lock:
            return [vars(f).copy() for f in self._queue]

    def take(self, path: str, collection: bool) -> Fault | None:
        """The fault to apply to this request, if any (a loop fault only applies to collection requests)."""
        with self._lock:
            for fault in self._queue:
                if path.startswith(fault.path_prefix) and (collection or fault.kind != "next_token_loop"):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._queue.remove(fault)
                    return fault
            # Draw only for eligible requests so the random sequence depends on the request sequence alone.
            if self.rate and path.startswith(self.rate_prefix) and self._random.random() < self.rate:
                kind = self.rate_kinds[self._random.randrange(len(self.rate_kinds))]
                return Fault(kind, self.rate_prefix, 0, DEFAULT_DELAYS.get(kind, 0.0))
        return None
