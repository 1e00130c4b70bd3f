"""Point 6: changes between two runs, through the Python API and the /_sandbox/ control plane alike."""

from __future__ import annotations

import datetime as dt

import pytest
import requests

# Time arithmetic: the date lane (make test-dates) runs this module at every date it tries.
pytestmark = pytest.mark.clock


@pytest.fixture
def sandbox(whoop_sandbox_factory):
    return whoop_sandbox_factory(days=40, rate_limits=[])


@pytest.fixture
def api(sandbox, make_client):
    return make_client(sandbox)


def control(sandbox, operation: str, **kwargs):
    response = requests.post(f"{sandbox.base_url}/_sandbox/{operation}", json=kwargs, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["result"]


def newest_updated(api, path: str) -> str:
    return max(r["updated_at"] for r in api.all_records(path))


@pytest.fixture(params=["python", "http"])
def change(request, sandbox):
    """Run a change either in-process or over HTTP: both must behave the same."""
    if request.param == "python":
        return lambda operation, **kwargs: getattr(sandbox, operation)(**kwargs)
    return lambda operation, **kwargs: control(sandbox, operation, **kwargs)


def test_rescore_pending(api, change):
    before = {p: newest_updated(api, p) for p in ("/v2/cycle", "/v2/recovery", "/v2/activity/sleep")}
    pending = [r for r in api.all_records("/v2/activity/sleep") if r["score_state"] == "PENDING_SCORE"]
    assert pending
    assert "score" not in pending[0]
    changed = change("rescore_pending")
    assert {r["score_state"] for r in changed} == {"SCORED"}
    assert len(changed) >= 3
    sleep = api.get(f"/v2/activity/sleep/{pending[0]['id']}").json()
    assert sleep["score_state"] == "SCORED"
    assert sleep["score"]["stage_summary"]["total_in_bed_time_milli"] > 0
    assert sleep["updated_at"] > before["/v2/activity/sleep"]
    cycle = api.get("/v2/cycle", limit=1).json()["records"][0]
    assert cycle["score_state"] == "SCORED"
    assert "end" not in cycle
    assert "score" in cycle
    for path in before:
        assert not [r for r in api.all_records(path) if r["score_state"] == "PENDING_SCORE"]
    assert change("rescore_pending") == []


def test_add_past_workout(sandbox, api, change):
    before = api.all_records("/v2/activity/workout")
    workout = change("add_past_workout", athlete=0, days_ago=10)
    after = api.all_records("/v2/activity/workout")
    assert len(after) == len(before) + 1
    assert api.get(f"/v2/activity/workout/{workout['id']}").json() == workout
    assert workout["updated_at"] > max(w["updated_at"] for w in before)
    assert workout["start"] < before[0]["start"]  # past-dated: not the newest by start
    assert workout["score_state"] == "SCORED"
    # An incremental run bookmarked on updated_at sees exactly this one.
    bookmark = max(w["updated_at"] for w in before)
    assert [w["id"] for w in after if w["updated_at"] > bookmark] == [workout["id"]]


def test_add_past_workout_still_being_scored(api, change):
    workout = change("add_past_workout", athlete=0, days_ago=4, pending=True)
    assert workout["score_state"] == "PENDING_SCORE"
    assert "score" not in api.get(f"/v2/activity/workout/{workout['id']}").json()
    rescored = {r["id"]: r for r in change("rescore_pending") if r.get("id") == workout["id"]}
    assert rescored[workout["id"]]["score_state"] == "SCORED"
    assert "strain" in rescored[workout["id"]]["score"]


def test_edit_sleep(api, change):
    before = {s["id"]: s for s in api.all_records("/v2/activity/sleep")}
    edited = change("edit_sleep", athlete=0, days_ago=5)
    old = before[edited["id"]]
    assert old["nap"] is False
    assert edited["end"] > old["end"]
    assert edited["updated_at"] > max(s["updated_at"] for s in before.values())
    stage = edited["score"]["stage_summary"]
    assert (
        stage["total_in_bed_time_milli"] == old["score"]["stage_summary"]["total_in_bed_time_milli"] + 720_000
    )
    parts = ("awake", "no_data", "light_sleep", "slow_wave_sleep", "rem_sleep")
    assert sum(stage[f"total_{p}_time_milli"] for p in parts) == stage["total_in_bed_time_milli"]
    assert api.get(f"/v2/activity/sleep/{edited['id']}").json() == edited


@pytest.mark.parametrize(
    ("kind", "path", "key"),
    [
        ("workout", "/v2/activity/workout", "id"),
        ("sleep", "/v2/activity/sleep", "id"),
        ("cycle", "/v2/cycle", "id"),
        ("recovery", "/v2/recovery", "cycle_id"),
    ],
)
def test_delete_record(api, change, kind, path, key):
    records = api.all_records(path)
    victim = records[3]
    deleted = change("delete_record", kind=kind, record_id=victim[key])
    assert deleted == victim
    remaining = api.all_records(path)
    assert len(remaining) == len(records) - 1
    assert victim[key] not in {r[key] for r in remaining}
    single = f"/v2/cycle/{victim[key]}/recovery" if kind == "recovery" else f"{path}/{victim[key]}"
    assert api.get(single).status_code == 404


def test_delete_unknown_record(sandbox):
    with pytest.raises(KeyError):
        sandbox.delete_record("workout", "00000000-0000-4000-8000-000000000000")
    response = requests.post(
        f"{sandbox.base_url}/_sandbox/delete_record", json={"kind": "cycle", "record_id": 1}, timeout=10
    )
    assert response.status_code == 400
    with pytest.raises(ValueError, match="kind"):
        sandbox.delete_record("planet", 1)


def test_start_new_cycle(api, change):
    before = api.all_records("/v2/cycle")
    current = before[0]
    assert "end" not in current
    closed, opened = change("start_new_cycle", athlete=0)
    after = api.all_records("/v2/cycle")
    assert len(after) == len(before) + 1
    assert after[0] == opened
    assert after[1] == closed
    assert closed["id"] == current["id"]
    assert closed["end"] == opened["start"]
    assert closed["score_state"] == "SCORED"
    assert 0 <= closed["score"]["strain"] <= 21
    assert closed["updated_at"] > current["updated_at"]
    assert "end" not in opened
    assert opened["score_state"] == "PENDING_SCORE"
    assert opened["id"] > closed["id"]
    # The closed cycle's activities still lie inside it.
    for workout in api.all_records("/v2/activity/workout", start=closed["start"]):
        assert workout["end"] <= closed["end"]


def test_changes_only_touch_their_athlete(sandbox, make_client):
    other = make_client(sandbox, athlete=1)
    before = other.all_records("/v2/activity/workout")
    sandbox.add_past_workout(athlete=0, days_ago=3)
    sandbox.start_new_cycle(athlete=0)
    assert other.all_records("/v2/activity/workout") == before
    with pytest.raises(ValueError, match="athlete"):
        sandbox.add_past_workout(athlete=5)


def test_control_plane_info_log_and_credentials(sandbox, api):
    info = requests.get(f"{sandbox.base_url}/_sandbox/info", timeout=10).json()
    assert info["api_url"] == sandbox.api_url
    assert info["athletes"] == [a.user_id for a in sandbox.athletes]
    assert "client_secret" not in info
    creds = control(sandbox, "credentials", athlete=0)
    assert set(creds) == {"api_url", "token_url", "auth_url", "client_id", "client_secret", "refresh_token"}
    refresh = control(sandbox, "grant_refresh_token", athlete=0)
    assert api.refresh(refresh).status_code == 200
    assert requests.post(f"{sandbox.base_url}/_sandbox/nope", json={}, timeout=10).status_code == 404
    bad = requests.post(f"{sandbox.base_url}/_sandbox/edit_sleep", json={"wrong": 1}, timeout=10)
    assert bad.status_code == 400


def test_add_fields_and_stop_field_change_what_is_served_not_the_records(sandbox, api, change):
    """WHOOP extends its API: new fields (top level, inside score, only on records created since a day) on
    collections, single records, profile and body; a field it stops sending is gone; updated_at stays."""
    before = {r["id"]: r for r in api.all_records("/v2/cycle")}
    added = {"daily_step_total": 1234, "score.breathing_variability": 25.9}
    change("add_fields", kind="cycles", fields=added)
    launched = change("add_fields", kind="cycle", fields={"launch": {"v": 1}}, since_days_ago=5)
    since = launched["since_ms"] / 1000
    recent = {i for i, r in before.items() if dt.datetime.fromisoformat(r["created_at"]).timestamp() >= since}
    assert recent, "the check needs cycles on both sides of the cut"
    assert recent != set(before), "the check needs cycles on both sides of the cut"
    change("add_fields", kind="profile", fields={"preferred_name": "Sam"})
    change("add_fields", kind="body_measurement", fields={"body_fat_percentage": 18.5})
    change("stop_field", kind="cycle", path="score.kilojoule")
    after = {r["id"]: r for r in api.all_records("/v2/cycle")}
    assert after.keys() == before.keys()
    for cycle_id, cycle in after.items():
        was = before[cycle_id]
        assert cycle["daily_step_total"] == 1234
        assert cycle["updated_at"] == was["updated_at"]
        assert ("launch" in cycle) == (cycle_id in recent)
        if "score" in was:
            assert cycle["score"]["breathing_variability"] == 25.9
            assert "kilojoule" not in cycle["score"]
            assert {k: v for k, v in cycle["score"].items() if k != "breathing_variability"} == {
                k: v for k, v in was["score"].items() if k != "kilojoule"
            }
        else:
            assert "score" not in cycle  # a nested field only where the record has the object
    one = api.get(f"/v2/cycle/{next(iter(recent))}").json()
    assert one["launch"] == {"v": 1}
    assert api.get("/v2/user/profile/basic").json()["preferred_name"] == "Sam"
    assert api.get("/v2/user/measurement/body").json()["body_fat_percentage"] == 18.5
    assert "daily_step_total" not in api.all_records("/v2/activity/sleep")[0]  # other resources unchanged
    change("reset_fields")
    assert {r["id"]: r for r in api.all_records("/v2/cycle")} == before


def test_field_changes_refuse_what_whoop_cannot_serve(sandbox):
    with pytest.raises(ValueError, match="unknown resource"):
        sandbox.add_fields("steps", {"x": 1})
    with pytest.raises(ValueError, match="non-empty"):
        sandbox.add_fields("cycle", {})
    with pytest.raises(ValueError, match="dotted names"):
        sandbox.stop_field("cycle", "score.")
    response = requests.post(
        f"{sandbox.base_url}/_sandbox/add_fields", json={"kind": "cycle", "fields": []}, timeout=10
    )
    assert response.status_code == 400
