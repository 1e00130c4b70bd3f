"""Point 2: deterministic, physiologically plausible athletes (checked on the generated records directly)."""

from __future__ import annotations

import itertools
import statistics
from datetime import UTC, datetime

import pytest
from whoop_sandbox import Sandbox
from whoop_sandbox.data import ZONE_KEYS, score_view

# Time arithmetic: the date lane (make test-dates) runs this module at every date it tries.
pytestmark = pytest.mark.clock

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def long_history() -> Sandbox:
    """5 years, 2 athletes: athlete 0 upgrades to WHOOP 4.0 along the way, athlete 1 never does."""
    return Sandbox(seed=7, days=1825, athletes=2, now=NOW)


def views(sandbox: Sandbox, kind: str, athlete: int = 0) -> list[dict]:
    return [score_view(r) for r in sandbox.athletes[athlete].records[kind].items]


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_same_inputs_same_data_and_seed_matters():
    a = Sandbox(seed=3, days=60, athletes=2, now=NOW)
    b = Sandbox(seed=3, days=60, athletes=2, now=NOW)
    c = Sandbox(seed=4, days=60, athletes=2, now=NOW)
    for kind in ("cycle", "sleep", "recovery", "workout"):
        assert views(a, kind, 1) == views(b, kind, 1)
        assert views(a, kind, 1) != views(c, kind, 1)
    assert [x.profile for x in a.athletes] == [x.profile for x in b.athletes]
    assert len({x.user_id for x in a.athletes}) == 2


def test_history_length_and_shape(long_history):
    for athlete in range(2):
        cycles = views(long_history, "cycle", athlete)
        assert 1820 <= len(cycles) <= 1826
        assert abs((NOW - parse(cycles[0]["start"])).days - 1825) <= 1
        # One open cycle, the newest; the others are contiguous: each ends where the next starts.
        assert [c for c in cycles if "end" not in c] == [cycles[-1]]
        for older, newer in itertools.pairwise(cycles):
            assert older["end"] == newer["start"]
            assert older["id"] < newer["id"]
        assert cycles[-1]["score_state"] == "PENDING_SCORE"


def test_ids_and_timestamps(long_history):
    now = NOW.timestamp()
    for kind, key in (("cycle", "id"), ("sleep", "id"), ("recovery", "cycle_id"), ("workout", "id")):
        records = views(long_history, kind)
        assert len({r[key] for r in records}) == len(records)
        for r in records:
            assert r["created_at"] <= r["updated_at"]
            assert parse(r["updated_at"]).timestamp() < now
            assert r["created_at"].endswith("Z")
            if "end" in r:
                assert r["start"] < r["end"] <= r["created_at"] or kind == "cycle"
            if "timezone_offset" in r:
                assert r["timezone_offset"] == "Z" or r["timezone_offset"][0] in "+-"
    assert all(isinstance(c["id"], int) for c in views(long_history, "cycle"))


def test_score_only_when_scored_and_every_state_occurs(long_history):
    for kind in ("cycle", "sleep", "recovery", "workout"):
        records = views(long_history, kind) + views(long_history, kind, 1)
        states = {r["score_state"] for r in records}
        assert states == {"SCORED", "PENDING_SCORE", "UNSCORABLE"}, kind
        for r in records:
            assert ("score" in r) == (r["score_state"] == "SCORED")
        # Pending means recent: only the newest records are still being scored.
        pending = [r for r in records if r["score_state"] == "PENDING_SCORE"]
        assert len(pending) <= 2
        unscorable = sum(r["score_state"] == "UNSCORABLE" for r in records)
        assert 0 < unscorable < 0.06 * len(records)


def test_sleeps_belong_to_cycles_and_stages_add_up(long_history):
    cycles = {c["id"]: c for c in views(long_history, "cycle")}
    sleeps = views(long_history, "sleep")
    naps = [s for s in sleeps if s["nap"]]
    mains = [s for s in sleeps if not s["nap"]]
    assert len(mains) == len(cycles)
    assert 50 < len(naps) < 300
    for s in sleeps:
        cycle = cycles[s["cycle_id"]]
        assert cycle["start"] <= s["start"]
        assert "end" not in cycle or s["end"] <= cycle["end"]
        if "score" not in s:
            continue
        stage = s["score"]["stage_summary"]
        parts = ("awake", "no_data", "light_sleep", "slow_wave_sleep", "rem_sleep")
        assert sum(stage[f"total_{p}_time_milli"] for p in parts) == stage["total_in_bed_time_milli"]
        in_bed_ms = (parse(s["end"]) - parse(s["start"])).total_seconds() * 1000
        assert stage["total_in_bed_time_milli"] == pytest.approx(in_bed_ms, abs=1)
        assert 0 <= s["score"]["sleep_efficiency_percentage"] <= 100
        assert 0 <= s["score"].get("sleep_performance_percentage", 0) <= 100
        assert 10 < s["score"]["respiratory_rate"] < 20
        assert s["score"]["sleep_needed"]["need_from_recent_nap_milli"] <= 0
    assert all("sleep_performance_percentage" not in s.get("score", {}) for s in naps)


def test_recovery_follows_hrv_and_resting_heart_rate(long_history):
    sleeps = {s["id"]: s for s in views(long_history, "sleep")}
    scored = [r for r in views(long_history, "recovery") if r["score_state"] == "SCORED"]
    for r in views(long_history, "recovery"):
        assert sleeps[r["sleep_id"]]["cycle_id"] == r["cycle_id"]
        assert sleeps[r["sleep_id"]]["nap"] is False
    scores = [r["score"]["recovery_score"] for r in scored]
    assert all(0 <= s <= 100 for s in scores)
    hrv = [r["score"]["hrv_rmssd_milli"] for r in scored]
    rhr = [r["score"]["resting_heart_rate"] for r in scored]
    assert statistics.correlation(hrv, scores) > 0.5
    assert statistics.correlation(rhr, scores) < -0.2
    assert scored[0]["score"]["user_calibrating"] is True
    assert not any(r["score"]["user_calibrating"] for r in scored[10:])


def test_spo2_and_skin_temperature_only_on_whoop_4(long_history):
    upgraded = [r["score"] for r in views(long_history, "recovery", 0) if "score" in r]
    never = [r["score"] for r in views(long_history, "recovery", 1) if "score" in r]
    assert not any("spo2_percentage" in s or "skin_temp_celsius" in s for s in never)
    assert "spo2_percentage" not in upgraded[0]
    assert "spo2_percentage" in upgraded[-1]
    assert "skin_temp_celsius" in upgraded[-1]
    assert all(90 <= s["spo2_percentage"] <= 100 for s in upgraded if "spo2_percentage" in s)


def test_workouts_zones_strain_and_optional_fields(long_history):
    workouts = views(long_history, "workout")
    cycles = views(long_history, "cycle")
    per_day = len(workouts) / len(cycles)
    assert 0.5 < per_day < 1.5
    scored = [w["score"] for w in workouts if "score" in w]
    for w in workouts:
        if "score" in w:
            duration = (parse(w["end"]) - parse(w["start"])).total_seconds() * 1000
            assert sum(w["score"]["zone_durations"][z] for z in ZONE_KEYS) == pytest.approx(duration, abs=1)
            assert 0 <= w["score"]["strain"] <= 21
            assert 0 < w["score"]["percent_recorded"] <= 100
            assert w["score"]["average_heart_rate"] <= w["score"]["max_heart_rate"]
        # Previous-generation ids disappear after 2025-09-01, as WHOOP announced.
        assert ("v1_id" in w) == (w["start"] < "2025-09-01")
        assert ("sport_id" in w) == ("v1_id" in w)
    with_distance = sum("distance_meter" in s for s in scored)
    with_altitude = sum("altitude_gain_meter" in s for s in scored)
    assert 0 < with_altitude < with_distance < len(scored)
    assert len({w["sport_name"] for w in workouts}) > 5
    for c in cycles:
        if "score" in c:
            assert 0 <= c["score"]["strain"] <= 21
            assert c["score"]["kilojoule"] > 0


def test_now_bounds_the_history():
    sandbox = Sandbox(seed=1, days=3, athletes=1, now=NOW)
    for kind in ("cycle", "sleep", "workout"):
        for record in views(sandbox, kind):
            assert parse(record["start"]) < NOW
            assert "end" not in record or parse(record["end"]) < NOW
    with pytest.raises(ValueError, match="aware"):
        Sandbox(now=datetime(2026, 1, 1))
