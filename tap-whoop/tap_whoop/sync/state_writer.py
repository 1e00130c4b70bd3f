"""The STATE messages of a run over many athletes, paced by their size."""

from __future__ import annotations

import json
import time
import typing as t

from tap_whoop.sdk import StateWriter

STATE_EVERY_SECONDS = 30.0  # a large state (many athletes) goes out at least this often
STATE_BYTES_PER_SECOND = 100_000  # and otherwise no faster than this


class PacedStateWriter(StateWriter):
    """Singer STATE paced to about `STATE_BYTES_PER_SECOND` (at most every `STATE_EVERY_SECONDS`), and
    whenever flushed.

    The state holds every athlete's partitions, and the SDK writes it after each sync of a partition: for an
    app's hundreds of athletes that would grow with the square of their number. A small state (one athlete)
    still goes out after every stream. Fewer STATE messages lose nothing: each still follows every record it
    covers, and the run ends with one.
    """

    def __init__(self, message_writer: t.Any, clock: t.Callable[[], float] = time.monotonic) -> None:
        super().__init__(message_writer)
        self._clock = clock
        self._written_at: float | None = None
        self._size = 0

    def write_state(self, state: t.Any) -> None:
        pause = min(STATE_EVERY_SECONDS, self._size / STATE_BYTES_PER_SECOND)
        if self._written_at is None or self._clock() - self._written_at >= pause:
            self.flush(state)

    def flush(self, state: t.Any) -> None:
        super().write_state(state)
        self._written_at = self._clock()
        self._size = len(json.dumps(state, default=str))  # Meltano hands state back with Decimals
