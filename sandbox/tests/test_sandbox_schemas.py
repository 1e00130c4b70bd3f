"""Point 1: every endpoint the sandbox serves answers with payloads that validate against WHOOP's spec."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

# Time arithmetic: the date lane (make test-dates) runs this module at every date it tries.
pytestmark = pytest.mark.clock

SPEC_DIR = Path(__file__).resolve().parents[2] / "spec"

# Spec operations the sandbox deliberately does not serve: the partner (lab) API is a different product, and
# the raw sleep signal stream is not part of the data the tap extracts.
NOT_SERVED = {"/v2/activity/sleep/{sleepId}/stream"}
COLLECTIONS = {
    "/v2/cycle": ("PaginatedCycleResponse", "Cycle"),
    "/v2/recovery": ("RecoveryCollection", "Recovery"),
    "/v2/activity/sleep": ("PaginatedSleepResponse", "Sleep"),
    "/v2/activity/workout": ("WorkoutCollection", "WorkoutV2"),
}


def _response_schema(spec: dict, path: str, method: str = "get") -> str | None:
    responses = spec["paths"][path][method]["responses"]
    for status in ("200",):
        content = responses.get(status, {}).get("content", {})
        if "application/json" in content:
            return content["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    return None


def _served_get_paths(spec: dict) -> list[str]:
    return sorted(
        path
        for path, item in spec["paths"].items()
        if "get" in item and not path.startswith("/v2/partner/") and path not in NOT_SERVED
    )


def _concrete(path: str, ids: dict) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(ids[m.group(1)]), path)


@pytest.mark.parametrize("now", [None, datetime(2025, 6, 1, 12, tzinfo=UTC)], ids=["today", "v1-era"])
def test_every_served_get_endpoint_validates(now, spec, validate, whoop_sandbox_factory, make_client):
    client = make_client(whoop_sandbox_factory(now=now))
    sleeps = client.all_records("/v2/activity/sleep")
    workouts = client.all_records("/v2/activity/workout")
    cycles = client.all_records("/v2/cycle")
    v1_sleep = next((s for s in sleeps if "v1_id" in s), None)
    assert (v1_sleep is None) == (now is None)
    ids = {
        "cycleId": cycles[1]["id"],
        "sleepId": sleeps[0]["id"],
        "workoutId": workouts[0]["id"],
        "activityV1Id": (v1_sleep or {"v1_id": 0})["v1_id"],
    }
    checked = []
    for path in _served_get_paths(spec):
        schema = _response_schema(spec, path)
        assert schema, f"spec path {path} has no JSON response schema"
        response = client.get(_concrete(path, ids))
        if path == "/v1/activity-mapping/{activityV1Id}":
            if v1_sleep is None:
                # Activities after 2025-09-01 have no v1 ids: the mapping correctly has nothing to find.
                assert response.status_code == 404
                continue
            assert response.json() == {"v2_activity_id": v1_sleep["id"]}
        assert response.status_code == 200, (path, response.text)
        assert response.headers["Content-Type"] == "application/json"
        validate(schema, response.json())
        checked.append(path)
    # Every operation the issue lists is among those checked.
    for required in [
        *COLLECTIONS,
        "/v2/cycle/{cycleId}",
        "/v2/cycle/{cycleId}/sleep",
        "/v2/cycle/{cycleId}/recovery",
        "/v2/activity/sleep/{sleepId}",
        "/v2/activity/workout/{workoutId}",
        "/v2/user/profile/basic",
        "/v2/user/measurement/body",
    ]:
        assert required in checked


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(COLLECTIONS))
def test_every_record_of_every_collection_validates(path, spec, validate, whoop_sandbox_factory, make_client):
    """All records of a long history (both hardware generations, v1-era ids, naps, every score state)."""
    sandbox = whoop_sandbox_factory(days=1600, athletes=2, rate_limits=[])
    # Whether the generated history ends on a workout still being scored depends on the date: make one.
    sandbox.add_past_workout(athlete=0, days_ago=2, pending=True)
    page_schema, record_schema = COLLECTIONS[path]
    assert _response_schema(spec, path) == page_schema
    states = set()
    for athlete in range(2):
        client = make_client(sandbox, athlete)
        response = client.get(path, limit=25)
        validate(page_schema, response.json())
        records = client.all_records(path)
        assert len(records) > 1000
        for record in records:
            validate(record_schema, record)
            states.add(record["score_state"])
            # The single-record endpoint returns the same payload, also valid.
            if path == "/v2/recovery" and record["cycle_id"] % 7 == 0:
                one = client.get(f"/v2/cycle/{record['cycle_id']}/recovery")
                assert one.json() == record
    assert states == {"SCORED", "PENDING_SCORE", "UNSCORABLE"}


def test_single_record_endpoints_return_the_collection_payload(validate, whoop_sandbox_factory, make_client):
    client = make_client(whoop_sandbox_factory(rate_limits=[]))
    for record in client.all_records("/v2/activity/sleep"):
        one = client.get(f"/v2/activity/sleep/{record['id']}").json()
        validate("Sleep", one)
        assert one == record
    for record in client.all_records("/v2/activity/workout"):
        assert client.get(f"/v2/activity/workout/{record['id']}").json() == record
    for record in client.all_records("/v2/cycle"):
        one = client.get(f"/v2/cycle/{record['id']}").json()
        validate("Cycle", one)
        assert one == record
        sleep = client.get(f"/v2/cycle/{record['id']}/sleep").json()
        validate("Sleep", sleep)
        assert sleep["cycle_id"] == record["id"]
        assert sleep["nap"] is False


def test_token_responses_match_whoop_example(client, whoop_sandbox):
    example = json.loads((SPEC_DIR / "examples" / "oauth_refresh_response.json").read_text())
    assert set(client.tokens) == set(example)
    assert client.tokens["token_type"] == "bearer"
    assert client.tokens["expires_in"] == 3600
    assert "offline" in client.tokens["scope"].split()
