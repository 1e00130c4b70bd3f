"""Singer messages of the `sleep_signals` stream for given sleeps, in exactly the shape tap-whoop emits it
(one record per sleep: the sleep's `updated_at`, and `stream`, WHOOP's sample objects verbatim), so the dbt
tests load raw `sleep_signals` through the real loaders until the tap's stream is wired into these tests.

Each stream is drawn from a seed made of the sleep's id and `updated_at`: the same version of a sleep always
gets the same stream, and an edited sleep (a newer `updated_at`) a new one whose timestamps differ. Samples
come at irregular gaps (no interval is documented), some keys are absent as when not requested, and a few
samples were taken while the strap was charging.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import typing as t

if t.TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

STREAM = "sleep_signals"
SCHEMA = {
    "type": "SCHEMA",
    "stream": STREAM,
    "key_properties": ["sleep_id", "sleep_updated_at"],
    "schema": {
        "type": "object",
        "properties": {
            "sleep_id": {"type": ["string"]},
            "user_id": {"type": ["integer"]},
            "sleep_updated_at": {"type": ["string"], "format": "date-time"},
            "algorithm_version": {"type": ["string", "null"]},
            "sample_count": {"type": ["integer", "null"]},
            "stream": {"type": ["array", "null"], "items": {"type": "object"}},
        },
    },
}
# Seconds between samples: irregular on purpose.
GAPS = (30, 60, 60, 90, 120, 180, 300)


def _parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.UTC)


def _format(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def stream_for(sleep: dict) -> list[dict]:
    """WHOOP's samples for one version of a sleep (its `start`, `end`, `updated_at`, as the API serves it)."""
    rng = random.Random(f"{sleep['id']}|{sleep['updated_at']}")
    start, end = _parse(sleep["start"]), _parse(sleep["end"])
    night_offset = rng.gauss(0, 0.3)  # this night's skin temperature against the athlete's usual
    wake_bout = start + (end - start) * rng.uniform(0.3, 0.7)
    charging_from = end - dt.timedelta(minutes=3) if rng.random() < 0.2 else None
    without_battery = rng.random() < 0.3  # a stream requested without battery_temp
    samples = []
    moment = start + dt.timedelta(seconds=rng.randint(0, 29), milliseconds=rng.randint(0, 999))
    while moment < end:
        minutes_in = (moment - start).total_seconds() / 60
        asleep = not (
            minutes_in < 12
            or (end - moment) < dt.timedelta(minutes=6)
            or wake_bout <= moment < wake_bout + dt.timedelta(minutes=15)
        )
        heart_rate = 52 + 6 * math.sin(minutes_in / 45) + (12 if not asleep else 0) + rng.gauss(0, 1.5)
        sample = {
            "timestamp": _format(moment),
            "hr": round(heart_rate),
            "skin_temp": round(33.6 + night_offset + rng.gauss(0, 0.1), 2),
            "board_temp": round(31.0 + rng.gauss(0, 0.3), 2),
            "battery_temp": round(30.2 + rng.gauss(0, 0.3), 2),
            "is_sleeping": asleep,
            "is_charging": charging_from is not None and moment >= charging_from,
        }
        if without_battery:
            del sample["battery_temp"]
        samples.append(sample)
        moment += dt.timedelta(seconds=rng.choice(GAPS))
    return samples


def record_for(sleep: dict) -> dict:
    samples = stream_for(sleep)
    return {
        "sleep_id": sleep["id"],
        "user_id": sleep["user_id"],
        "sleep_updated_at": sleep["updated_at"],
        "algorithm_version": "4.2.0",
        "sample_count": len(samples),
        "stream": samples,
    }


def messages_for(sleeps: Iterable[dict]) -> list[dict]:
    """The SCHEMA message, then one RECORD per sleep."""
    now = dt.datetime.now(dt.UTC).isoformat()
    records = [
        {"type": "RECORD", "stream": STREAM, "record": record_for(sleep), "time_extracted": now}
        for sleep in sleeps
    ]
    return [SCHEMA, *records]


def sleeps_in(message_files: Iterable[Path]) -> list[dict]:
    """The sleeps tap-whoop emitted in these Singer message files."""
    sleeps = []
    for path in message_files:
        for line in path.read_text().splitlines():
            message = json.loads(line)
            if message.get("type") == "RECORD" and message.get("stream") == "sleeps":
                sleeps.append(message["record"])
    return sleeps


def write(sleeps: Iterable[dict], path: Path) -> Path:
    """The messages for `sleeps` as a Singer message file."""
    path.write_text("".join(json.dumps(m) + "\n" for m in messages_for(sleeps)))
    return path
