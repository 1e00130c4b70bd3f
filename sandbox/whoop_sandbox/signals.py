"""A sleep's raw signal stream (`GET /v2/activity/sleep/{id}/stream`): samples every `interval` seconds
from the sleep's start to its end, a pure function of (sleep id, its `updated_at`, the interval), so an edited
sleep serves a new stream (new values, timestamps following its new start and end), an unchanged one the
same."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from random import Random

from .data import Record

# The `types` query values WHOOP accepts and the sample keys each one brings (`timestamp` always comes).
SIGNAL_KEYS = {
    "hr": "hr",
    "skin_temp": "skin_temp",
    "board_temp": "board_temp",
    "battery_temp": "battery_temp",
    "sleep_classification": "is_sleeping",
    "charging_status": "is_charging",
}
DEFAULT_INTERVAL = 60.0
ALGORITHM_VERSION = "4.2.1"


class UnknownSignalType(ValueError):
    """A `types` value WHOOP does not know (the API answers 400)."""


def parse_types(value: str | None) -> tuple[str, ...]:
    """`types` as the query gave it: repeated (`types=hr&types=skin_temp`, joined with commas by the server)
    or comma-separated; absent means all of them."""
    if value is None or value == "":
        return tuple(SIGNAL_KEYS)
    types = tuple(dict.fromkeys(part.strip() for part in value.split(",")))
    unknown = [kind for kind in types if kind not in SIGNAL_KEYS]
    if unknown:
        raise UnknownSignalType(f"unknown types {unknown}; expected some of {list(SIGNAL_KEYS)}")
    return types


def sleep_stream(sleep: Record, interval: float, types: tuple[str, ...]) -> str:
    """The stream WHOOP would serve for `sleep`, as JSON text: `{"stream": [...], "algorithm_version": ...}`.

    Written directly as text: a night at 1 s is ~28,800 samples, and a benchmark asks for one every 0.6 s."""
    rng = Random(f"whoop-sandbox:stream:{sleep.key}:{sleep.body['updated_at']}")
    step = max(1, round(interval * 1000))
    # An edited sleep is sampled anew: its samples fall at other instants (7919 ms, a prime, later per edit),
    # so a loader that keeps the old stream beside the new one is caught.
    start, end = sleep.start_ms + (sleep.edits * 7919) % step, sleep.finished_ms
    count = max(0, (end - start) // step + 1)
    stage = (sleep.hidden_score or {}).get("stage_summary") or {}
    # Awake time as WHOOP's stage summary says, half falling asleep and half waking up: the share of
    # `is_sleeping: false` samples matches the summary.
    awake = int(stage.get("total_awake_time_milli", 0))
    asleep_from, asleep_until = start + awake // 2, end - (awake - awake // 2)
    resting_hr = rng.uniform(46, 62)
    skin = rng.uniform(33.0, 35.0)
    phase = rng.uniform(0, 2 * math.pi)
    wanted = set(types)
    noise = rng.random
    # Naive UTC and isoformat: WHOOP's format (data.fmt), at twice its speed.
    first = datetime.fromtimestamp(start / 1000, UTC).replace(tzinfo=None)
    samples = []
    for index in range(count):
        at = start + index * step
        sleeping = asleep_from <= at < asleep_until
        # A 90-minute sleep cycle in the heart rate, a slow drift in the temperatures, a little noise.
        cycle = math.sin(phase + (at - start) / 5_400_000 * 2 * math.pi)
        stamp = (first + timedelta(milliseconds=index * step)).isoformat(timespec="milliseconds")
        parts = [f'{{"timestamp":"{stamp}Z"']
        if "hr" in wanted:
            parts.append(f'"hr":{round(resting_hr + 4 * cycle + (0 if sleeping else 14) + 4 * noise() - 2)}')
        if "skin_temp" in wanted:
            parts.append(f'"skin_temp":{skin + 0.4 * cycle + 0.1 * noise():.2f}')
        if "board_temp" in wanted:
            parts.append(f'"board_temp":{skin + 1.1 + 0.3 * cycle + 0.1 * noise():.2f}')
        if "battery_temp" in wanted:
            parts.append(f'"battery_temp":{skin + 1.6 + 0.2 * cycle + 0.1 * noise():.2f}')
        if "sleep_classification" in wanted:
            parts.append(f'"is_sleeping":{"true" if sleeping else "false"}')
        if "charging_status" in wanted:
            parts.append('"is_charging":false')
        samples.append(",".join(parts) + "}")
    return f'{{"stream":[{",".join(samples)}],"algorithm_version":"{ALGORITHM_VERSION}"}}'
