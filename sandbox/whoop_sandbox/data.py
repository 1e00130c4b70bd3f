"""Deterministic synthetic WHOOP athletes and their records.

Everything is a pure function of (seed, athlete index, history length, `now`): each local day draws from its
own seeded generator, so record ids and values of a day do not depend on how many other days were generated.
Day-to-day physiology (yesterday's strain lowers today's recovery, sleep debt raises sleep need) is carried
along in order. Records keep the API payload in `body`; score values are always computed and kept aside in
`hidden_score`, so a PENDING_SCORE record can be rescored later without inventing new numbers.
"""

from __future__ import annotations

import math
import uuid
from bisect import bisect_left, insort
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from random import Random

KINDS = ("cycle", "sleep", "recovery", "workout")
SCORE_STATES = ("SCORED", "PENDING_SCORE", "UNSCORABLE")
MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
# No record spans more than this, so a collection scan may stop this far before the `start` filter.
MAX_SPAN = 3 * DAY
# WHOOP stopped sending previous-generation ids (v1_id, sport_id) for activities after this date.
V1_IDS_UNTIL = int(datetime(2025, 9, 1, tzinfo=UTC).timestamp() * 1000)
# WHOOP 4.0 (SpO2 and skin temperature) shipped in September 2021.
WHOOP_4_RELEASE = int(datetime(2021, 9, 8, tzinfo=UTC).timestamp() * 1000)

FIRST_NAMES = (
    "Ada",
    "Ben",
    "Chloe",
    "Dev",
    "Elena",
    "Femi",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kira",
    "Luis",
)
LAST_NAMES = ("Okafor", "Lindqvist", "Moreau", "Tanaka", "Rossi", "Novak", "Silva", "Walsh", "Khan", "Berg")
TIMEZONES = ("-05:00", "+01:00", "-08:00", "Z", "+10:00", "-03:00", "+05:30", "+02:00")
# (sport_id, sport_name, intensity 0..1, typical minutes, metres per minute or None, outdoors with climbs)
SPORTS = (
    (0, "running", 0.75, 45, 170.0, True),
    (1, "cycling", 0.65, 75, 420.0, True),
    (33, "swimming", 0.6, 40, 40.0, False),
    (44, "yoga", 0.25, 55, None, False),
    (45, "weightlifting", 0.45, 60, None, False),
    (48, "functional-fitness", 0.7, 45, None, False),
    (52, "hiking/rucking", 0.45, 120, 75.0, True),
    (63, "walking", 0.3, 50, 90.0, True),
    (-1, "activity", 0.4, 35, None, False),
)
ZONE_KEYS = (
    "zone_zero_milli",
    "zone_one_milli",
    "zone_two_milli",
    "zone_three_milli",
    "zone_four_milli",
    "zone_five_milli",
)
ALL_SCOPES = (
    "read:recovery",
    "read:cycles",
    "read:workout",
    "read:sleep",
    "read:profile",
    "read:body_measurement",
)


def fmt(ms: int) -> str:
    """WHOOP's timestamp format: UTC with milliseconds and a `Z`."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def to_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _tz_minutes(offset: str) -> int:
    if offset == "Z":
        return 0
    sign = -1 if offset[0] == "-" else 1
    return sign * (int(offset[1:3]) * 60 + int(offset[4:6]))


def _uuid(rng: Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def _split(total: int, weights: list[float]) -> list[int]:
    """Integer parts of `total` proportional to `weights`, summing to `total` exactly."""
    scale = sum(weights)
    parts = [int(total * w / scale) for w in weights[:-1]]
    parts.append(total - sum(parts))
    return parts


@dataclass(eq=False)
class Record:
    kind: str
    key: int | str
    start_ms: int
    end_ms: int | None
    body: dict
    hidden_score: dict | None = None
    athlete: int = 0
    # Times the athlete edited it (edit_sleep, move_record): an edited sleep's signal stream is sampled anew.
    edits: int = 0

    @property
    def sort_key(self) -> tuple[int, str]:
        return (self.start_ms, str(self.key))

    @property
    def finished_ms(self) -> int:
        """end_ms of a record that has ended (every record but the current cycle)."""
        if self.end_ms is None:
            raise ValueError(f"{self.kind} {self.key} has not ended")
        return self.end_ms


@dataclass
class Collection:
    """Records of one kind for one athlete, kept in ascending (start, key) order for range queries."""

    items: list[Record] = field(default_factory=list)
    by_key: dict = field(default_factory=dict)

    def add(self, record: Record) -> None:
        insort(self.items, record, key=lambda r: r.sort_key)
        self.by_key[record.key] = record

    def remove(self, key) -> Record:
        record = self.by_key.pop(key)
        self.items.remove(record)
        return record

    def query(self, start_ms: int | None, end_ms: int, after: tuple[int, str] | None, limit: int):
        """Newest-first page of records overlapping [start, end) as the WHOOP spec defines it.

        A record matches when it started before `end` (exclusive) and had not ended before `start`
        (inclusive).
        `after` is the sort key of the last record of the previous page. Returns (records, has_more).
        """
        hi = bisect_left(self.items, end_ms, key=lambda r: r.start_ms)
        if after is not None:
            hi = min(hi, bisect_left(self.items, after, key=lambda r: r.sort_key))
        page: list[Record] = []
        for i in range(hi - 1, -1, -1):
            record = self.items[i]
            if start_ms is not None and record.end_ms is not None and record.end_ms < start_ms:
                if record.start_ms < start_ms - MAX_SPAN:
                    break
                continue
            if len(page) == limit:
                return page, True
            page.append(record)
        return page, False


@dataclass
class Athlete:
    index: int
    user_id: int
    profile: dict
    body: dict
    timezone_offset: str
    base_rhr: float
    base_hrv: float
    max_hr: int
    sleep_need_ms: int
    bmr_kj: float
    whoop4_since_ms: int | None
    records: dict[str, Collection] = field(default_factory=lambda: {k: Collection() for k in KINDS})

    def current_cycle(self) -> Record | None:
        items = self.records["cycle"].items
        return items[-1] if items and items[-1].end_ms is None else None


def _cycle_id(index: int, day: date) -> int:
    return 1_000_000_000 + index * 10_000_000 + (day.toordinal() - 700_000) * 10


def make_athlete(seed: int, index: int, taken_user_ids: set[int]) -> Athlete:
    rng = Random(f"whoop-sandbox:{seed}:athlete:{index}")
    user_id = rng.randrange(10_000, 99_999_999)
    while user_id in taken_user_ids:
        user_id = rng.randrange(10_000, 99_999_999)
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    age = rng.randint(22, 58)
    height = round(rng.uniform(1.55, 1.96), 4)
    weight = round(height * height * rng.uniform(20.0, 27.5), 4)
    max_hr = round(208 - 0.7 * age + rng.uniform(-6, 6))
    # Odd-numbered athletes wear a WHOOP 3.0 forever, so their recoveries never carry SpO2 / skin temperature.
    whoop4 = WHOOP_4_RELEASE + rng.randrange(0, 400) * DAY if index % 2 == 0 else None
    return Athlete(
        index=index,
        user_id=user_id,
        profile={
            "user_id": user_id,
            "email": f"{first}.{last}.{user_id}@example.test".lower(),
            "first_name": first,
            "last_name": last,
        },
        body={"height_meter": height, "weight_kilogram": weight, "max_heart_rate": max_hr},
        timezone_offset=TIMEZONES[(seed + index) % len(TIMEZONES)],
        base_rhr=rng.uniform(44, 64),
        base_hrv=rng.uniform(35, 115),
        max_hr=max_hr,
        sleep_need_ms=int(rng.uniform(7.2, 8.6) * HOUR),
        bmr_kj=rng.uniform(6800, 9600),
        whoop4_since_ms=whoop4,
    )


def workout_score(rng: Random, athlete: Athlete, sport: tuple, start_ms: int, minutes: float) -> dict:
    _, _name, intensity, _, speed, outdoors = sport
    duration = int(minutes * MINUTE)
    # Time in zones 0..5 peaks around the sport's intensity.
    centre = 5 * _clamp(intensity + rng.gauss(0, 0.08), 0.05, 0.95)
    weights = [math.exp(-((z - centre) ** 2) / 1.6) + 0.02 for z in range(6)]
    zones = _split(duration, weights)
    fraction = [(0.45 + 0.1 * z) for z in range(6)]  # zone midpoints as a share of max heart rate
    avg_hr = round(athlete.max_hr * sum(f * z for f, z in zip(fraction, zones, strict=True)) / duration)
    top_zone = max(z for z in range(6) if zones[z] > 0)
    max_hr = min(athlete.max_hr, round(athlete.max_hr * (fraction[top_zone] + 0.05 + rng.uniform(0, 0.04))))
    load = sum(z * ms / MINUTE for z, ms in enumerate(zones))
    score = {
        "strain": round(21 * (1 - math.exp(-load / 180)), 4),
        "average_heart_rate": avg_hr,
        "max_heart_rate": max(max_hr, avg_hr),
        "kilojoule": round(minutes * (3 + 0.25 * max(0, avg_hr - athlete.base_rhr)), 4),
        "percent_recorded": 100.0 if rng.random() < 0.85 else round(rng.uniform(70, 99.9), 2),
        "zone_durations": dict(zip(ZONE_KEYS, zones, strict=True)),
    }
    if speed is not None and rng.random() < 0.8:
        score["distance_meter"] = round(minutes * speed * rng.uniform(0.8, 1.2), 4)
        if outdoors and rng.random() < 0.7:
            gain = rng.uniform(5, 30) * minutes / 10
            score["altitude_gain_meter"] = round(gain, 4)
            score["altitude_change_meter"] = round(rng.uniform(-0.5, 0.5) * gain, 4)
    return score


def make_workout(rng: Random, athlete: Athlete, start_ms: int, minutes: float, sport: tuple) -> Record:
    end_ms = start_ms + int(minutes * MINUTE)
    workout_id = _uuid(rng)
    body = {
        "id": workout_id,
        "user_id": athlete.user_id,
        "created_at": fmt(end_ms + rng.randrange(1, 10) * MINUTE),
        "updated_at": fmt(end_ms + rng.randrange(10, 60) * MINUTE),  # the score lands a little later
        "start": fmt(start_ms),
        "end": fmt(end_ms),
        "timezone_offset": athlete.timezone_offset,
        "sport_name": sport[1],
        "score_state": "SCORED",
    }
    if start_ms < V1_IDS_UNTIL:
        body["v1_id"] = int(workout_id[:8], 16) % 900_000_000 + 100_000
        body["sport_id"] = sport[0]
    score = workout_score(rng, athlete, sport, start_ms, minutes)
    return Record("workout", workout_id, start_ms, end_ms, body, score, athlete.index)


def sleep_score(rng: Random, in_bed: int, need: dict | None, nap: bool, consistency: float | None) -> dict:
    no_data = 0 if rng.random() < 0.9 else rng.randrange(1, 20) * MINUTE
    awake = int((in_bed - no_data) * rng.uniform(0.04, 0.14))
    asleep = in_bed - no_data - awake
    light, deep, rem = _split(
        asleep, [rng.uniform(0.45, 0.55), rng.uniform(0.15, 0.25), rng.uniform(0.18, 0.27)]
    )
    stage = {
        "total_in_bed_time_milli": in_bed,
        "total_awake_time_milli": awake,
        "total_no_data_time_milli": no_data,
        "total_light_sleep_time_milli": light,
        "total_slow_wave_sleep_time_milli": deep,
        "total_rem_sleep_time_milli": rem,
        "sleep_cycle_count": max(0 if nap else 1, round(asleep / (90 * MINUTE))),
        "disturbance_count": rng.randrange(0, 4) if nap else rng.randrange(3, 22),
    }
    needed = need or {
        "baseline_milli": 0,
        "need_from_sleep_debt_milli": 0,
        "need_from_recent_strain_milli": 0,
        "need_from_recent_nap_milli": 0,
    }
    score = {
        "stage_summary": stage,
        "sleep_needed": needed,
        "respiratory_rate": round(rng.uniform(13.0, 17.5), 8),
        "sleep_efficiency_percentage": round(100 * asleep / max(1, in_bed - no_data), 8),
    }
    total_need = sum(needed.values())
    if not nap and total_need > 0:
        score["sleep_performance_percentage"] = float(min(100, round(100 * asleep / total_need)))
    if consistency is not None:
        score["sleep_consistency_percentage"] = float(round(consistency))
    return score


def asleep_ms(score: dict) -> int:
    stage = score["stage_summary"]
    return (
        stage["total_light_sleep_time_milli"]
        + stage["total_slow_wave_sleep_time_milli"]
        + stage["total_rem_sleep_time_milli"]
    )


def cycle_score(rng: Random, athlete: Athlete, start_ms: int, end_ms: int, workouts: list[Record]) -> dict:
    hours = (end_ms - start_ms) / HOUR
    scores = [w.hidden_score for w in workouts if w.hidden_score]
    load = rng.uniform(3.0, 8.5) * min(1.0, hours / 24) + sum(0.6 * s["strain"] for s in scores)
    strain = round(_clamp(21 * (1 - math.exp(-load / 14)), 0.1, 20.9), 7)
    return {
        "strain": strain,
        "kilojoule": round(athlete.bmr_kj * hours / 24 + sum(s["kilojoule"] for s in scores), 3),
        "average_heart_rate": round(athlete.base_rhr + 12 + 0.9 * strain + rng.uniform(-3, 3)),
        "max_heart_rate": max(
            [round(rng.uniform(105, 150))] + [s["max_heart_rate"] for s in scores],
        ),
    }


def score_view(record: Record) -> dict:
    """The API payload: `score` only when SCORED."""
    body = dict(record.body)
    if body["score_state"] == "SCORED" and record.hidden_score is not None:
        body["score"] = record.hidden_score
    return body


def generate_history(athlete: Athlete, seed: int, days: int, now_ms: int) -> None:
    """Fill `athlete.records` with `days` days of history up to `now_ms`."""
    tz_ms = _tz_minutes(athlete.timezone_offset) * MINUTE
    today = datetime.fromtimestamp((now_ms + tz_ms) / 1000, UTC).date()
    first = today - timedelta(days=max(1, days))

    # Plan the nights first: a cycle runs from one sleep onset to the next, and only nights whose sleep has
    # ended (and synced) by `now` exist yet.
    nights = []
    day = first
    while day <= today:
        rng = Random(f"whoop-sandbox:{seed}:{athlete.index}:{day.toordinal()}")
        midnight = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000) - tz_ms
        onset = midnight + 22 * HOUR + int(rng.gauss(45, 40) * MINUTE)
        in_bed = int(_clamp(rng.gauss(athlete.sleep_need_ms / HOUR - 0.3, 0.8), 4.5, 10.5) * HOUR)
        if onset + in_bed + 30 * MINUTE <= now_ms:
            nights.append((day, rng, onset, in_bed))
        day += timedelta(days=1)

    cycles, sleeps = athlete.records["cycle"], athlete.records["sleep"]
    recoveries, workouts = athlete.records["recovery"], athlete.records["workout"]
    prev_strain, prev_debt, prev_nap = 10.0, 0, 0
    prev_onset_clock: int | None = None
    for n, (day, rng, onset, in_bed) in enumerate(nights):
        current = n == len(nights) - 1
        cycle_end = None if current else nights[n + 1][2]
        horizon = now_ms - 10 * MINUTE if cycle_end is None else cycle_end - 60 * MINUTE
        cycle_id = _cycle_id(athlete.index, day)
        sleep_end = onset + in_bed

        # Main sleep, then its recovery.
        need = {
            "baseline_milli": athlete.sleep_need_ms,
            "need_from_sleep_debt_milli": int(prev_debt * 0.5),
            "need_from_recent_strain_milli": int(max(0.0, prev_strain - 8) * 4 * MINUTE),
            "need_from_recent_nap_milli": -int(prev_nap * 0.8),
        }
        onset_clock = (onset + tz_ms) % DAY
        consistency = (
            None
            if n < 3 or prev_onset_clock is None
            else _clamp(100 - abs(onset_clock - prev_onset_clock) / MINUTE * 0.6, 35, 99)
        )
        prev_onset_clock = onset_clock
        score = sleep_score(rng, in_bed, need, nap=False, consistency=consistency)
        sleep_id = _uuid(rng)
        state = "UNSCORABLE" if rng.random() < 0.02 else "SCORED"
        if current:
            state = "PENDING_SCORE"
        created = sleep_end + rng.randrange(2, 20) * MINUTE
        scored_at = created + rng.randrange(5, 40) * MINUTE if state == "SCORED" else created
        sleep_body = {
            "id": sleep_id,
            "cycle_id": cycle_id,
            "user_id": athlete.user_id,
            "created_at": fmt(created),
            "updated_at": fmt(scored_at),
            "start": fmt(onset),
            "end": fmt(sleep_end),
            "timezone_offset": athlete.timezone_offset,
            "nap": False,
            "score_state": state,
        }
        if onset < V1_IDS_UNTIL:
            sleep_body["v1_id"] = int(sleep_id[:8], 16) % 900_000_000 + 100_000
        sleeps.add(Record("sleep", sleep_id, onset, sleep_end, sleep_body, score, athlete.index))
        prev_debt = max(0, sum(need.values()) - asleep_ms(score))

        hrv = athlete.base_hrv * math.exp(rng.gauss(0, 0.18) - 0.025 * (prev_strain - 10))
        rhr = athlete.base_rhr * math.exp(rng.gauss(0, 0.035) + 0.008 * (prev_strain - 10))
        recovery = 56 + 90 * math.log(hrv / athlete.base_hrv) - 150 * math.log(rhr / athlete.base_rhr)
        recovery_score = {
            "user_calibrating": n < 4,
            "recovery_score": float(round(_clamp(recovery + rng.gauss(0, 4), 1, 99))),
            "resting_heart_rate": float(round(rhr)),
            "hrv_rmssd_milli": round(hrv, 6),
        }
        if athlete.whoop4_since_ms is not None and onset >= athlete.whoop4_since_ms:
            recovery_score["spo2_percentage"] = round(rng.uniform(94.0, 99.0), 4)
            recovery_score["skin_temp_celsius"] = round(rng.uniform(32.6, 34.9), 3)
        recovery_body = {
            "cycle_id": cycle_id,
            "sleep_id": sleep_id,
            "user_id": athlete.user_id,
            "created_at": fmt(created),
            "updated_at": fmt(scored_at),
            "score_state": state,
        }
        recoveries.add(
            Record("recovery", cycle_id, onset, sleep_end, recovery_body, recovery_score, athlete.index)
        )

        # The waking day: workouts, sometimes a nap.
        day_workouts: list[Record] = []
        cursor = sleep_end + HOUR + rng.randrange(0, 180) * MINUTE
        for _ in range(rng.choices((0, 1, 2), weights=(35, 50, 15))[0]):
            sport = SPORTS[rng.randrange(len(SPORTS))]
            minutes = _clamp(rng.gauss(sport[3], sport[3] * 0.25), 15, 240)
            start = cursor + rng.randrange(0, 240) * MINUTE
            if start + minutes * MINUTE > horizon:
                break
            workout = make_workout(rng, athlete, start, minutes, sport)
            if rng.random() < 0.03:
                workout.body["score_state"] = "UNSCORABLE"
                workout.body["updated_at"] = workout.body["created_at"]
            day_workouts.append(workout)
            workouts.add(workout)
            cursor = workout.finished_ms + HOUR
        prev_nap = 0
        if rng.random() < 0.08:
            nap_start = sleep_end + rng.randrange(6 * 60, 9 * 60) * MINUTE
            nap_len = rng.randrange(20, 90) * MINUTE
            nap_end = nap_start + nap_len
            overlaps = any(w.start_ms < nap_end and nap_start < w.finished_ms for w in day_workouts)
            if nap_end <= horizon and not overlaps:
                nap_score = sleep_score(rng, nap_len, None, nap=True, consistency=None)
                nap_id = _uuid(rng)
                nap_body = {
                    "id": nap_id,
                    "cycle_id": cycle_id,
                    "user_id": athlete.user_id,
                    "created_at": fmt(nap_end + 5 * MINUTE),
                    "updated_at": fmt(nap_end + 25 * MINUTE),
                    "start": fmt(nap_start),
                    "end": fmt(nap_end),
                    "timezone_offset": athlete.timezone_offset,
                    "nap": True,
                    "score_state": "SCORED",
                }
                sleeps.add(Record("sleep", nap_id, nap_start, nap_end, nap_body, nap_score, athlete.index))
                prev_nap = asleep_ms(nap_score)

        # The cycle itself, scored once it has ended.
        score_end = cycle_end if cycle_end is not None else now_ms
        c_score = cycle_score(rng, athlete, onset, score_end, day_workouts)
        if cycle_end is None:
            c_state, c_updated = "PENDING_SCORE", created
        else:
            c_state = "UNSCORABLE" if rng.random() < 0.01 else "SCORED"
            c_updated = min(cycle_end + rng.randrange(10, 90) * MINUTE, now_ms - MINUTE)
        cycle_body = {
            "id": cycle_id,
            "user_id": athlete.user_id,
            "created_at": fmt(created),
            "updated_at": fmt(max(created, c_updated)),
            "start": fmt(onset),
            "end": fmt(cycle_end) if cycle_end is not None else None,
            "timezone_offset": athlete.timezone_offset,
            "score_state": c_state,
        }
        if cycle_end is None:
            del cycle_body["end"]  # the current cycle has no end yet
        cycles.add(Record("cycle", cycle_id, onset, cycle_end, cycle_body, c_score, athlete.index))
        prev_strain = c_score["strain"]

    # The newest workout was just uploaded and is still being scored.
    if workouts.items and nights and workouts.items[-1].start_ms >= nights[-1][2]:
        newest = workouts.items[-1]
        newest.body["score_state"] = "PENDING_SCORE"
        newest.body["updated_at"] = newest.body["created_at"]
    _clamp_updated(athlete, now_ms)


def _clamp_updated(athlete: Athlete, now_ms: int) -> None:
    """No record may claim to have been created or updated after `now`."""
    latest = fmt(now_ms - 1000)
    for collection in athlete.records.values():
        for record in collection.items[-10:]:
            for name in ("created_at", "updated_at"):
                if record.body[name] > latest:
                    record.body[name] = latest
