"""A sleep's signal stream (`GET /v2/activity/sleep/{id}/stream`): the spec's shape, samples over the sleep at
the configured interval, the `types` filter, 400 and 404, determinism, and a new stream after an edit."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from whoop_sandbox.signals import SIGNAL_KEYS

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ALL_KEYS = {"timestamp", *SIGNAL_KEYS.values()}


@pytest.fixture
def sandbox(whoop_sandbox_factory):
    return whoop_sandbox_factory(days=20, athletes=2, now=NOW, rate_limits=[], signal_interval=30)


@pytest.fixture
def api(sandbox, make_client):
    return make_client(sandbox)


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def scored_sleep(sandbox) -> dict:
    return sandbox.record_near("sleep", athlete=0, days_ago=6)


def test_stream_spans_the_sleep_at_the_interval_with_every_signal(sandbox, api, validate):
    sleep = scored_sleep(sandbox)
    response = api.get(f"/v2/activity/sleep/{sleep['id']}/stream")
    assert response.status_code == 200, response.text
    body = response.json()
    validate("SleepStreamResponse", body)
    samples = body["stream"]
    assert {frozenset(s) for s in samples} == {frozenset(ALL_KEYS)}
    times = [ms(s["timestamp"]) for s in samples]
    assert times[0] == ms(sleep["start"])
    assert {b - a for a, b in itertools.pairwise(times)} == {30_000}
    assert ms(sleep["end"]) - 30_000 < times[-1] <= ms(sleep["end"])
    assert all(35 <= s["hr"] <= 110 and 30 < s["skin_temp"] < s["battery_temp"] < 40 for s in samples)
    # Awake samples as the stage summary says (within a sample or two of its awake time).
    awake = sum(not s["is_sleeping"] for s in samples) * 30_000
    assert abs(awake - sleep["score"]["stage_summary"]["total_awake_time_milli"]) <= 60_000
    assert isinstance(body["algorithm_version"], str)


def test_stream_is_deterministic_and_follows_the_interval_setting(sandbox, api):
    sleep = scored_sleep(sandbox)
    path = f"/v2/activity/sleep/{sleep['id']}/stream"
    first = api.get(path).json()
    assert api.get(path).json() == first
    sandbox.signal_interval = 1
    dense = api.get(path).json()["stream"]
    assert len(dense) == pytest.approx(len(first["stream"]) * 30, abs=30)


@pytest.mark.parametrize("query", ["types=hr&types=sleep_classification", "types=hr,sleep_classification"])
def test_types_filter_exploded_or_comma_separated(sandbox, api, query):
    sleep = scored_sleep(sandbox)
    response = api.session.get(
        f"{sandbox.api_url}/v2/activity/sleep/{sleep['id']}/stream?{query}",
        headers={"Authorization": f"Bearer {api.tokens['access_token']}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert {frozenset(s) for s in response.json()["stream"]} == {
        frozenset({"timestamp", "hr", "is_sleeping"})
    }
    assert sandbox.request_log[-1]["params"] == {"types": "hr,sleep_classification"}


def test_unknown_type_is_400_and_unknown_or_deleted_sleep_404(sandbox, api, make_client):
    sleep = scored_sleep(sandbox)
    response = api.get(f"/v2/activity/sleep/{sleep['id']}/stream", types="heart_rate")
    assert response.status_code == 400
    assert "heart_rate" in response.json()["message"]
    assert api.get(f"/v2/activity/sleep/{sleep['id']}/stream", other="x").status_code == 400
    assert api.get("/v2/activity/sleep/not-a-uuid/stream").status_code == 400
    missing = "/v2/activity/sleep/00000000-0000-4000-8000-000000000000/stream"
    assert api.get(missing).status_code == 404
    # Another athlete's sleep is not found with this athlete's token.
    assert make_client(sandbox, athlete=1).get(f"/v2/activity/sleep/{sleep['id']}/stream").status_code == 404
    sandbox.delete_record("sleep", sleep["id"])
    assert api.get(f"/v2/activity/sleep/{sleep['id']}/stream").status_code == 404


def test_an_edited_sleep_serves_a_new_stream(sandbox, api):
    sleep = scored_sleep(sandbox)
    path = f"/v2/activity/sleep/{sleep['id']}/stream"
    before = api.get(path).json()["stream"]
    edited = sandbox.edit_sleep(athlete=0, days_ago=6)
    assert edited["id"] == sleep["id"]
    after = api.get(path).json()["stream"]
    assert ms(after[-1]["timestamp"]) > ms(before[-1]["timestamp"])  # the wake time moved 12 minutes
    assert ms(edited["end"]) - 30_000 < ms(after[-1]["timestamp"]) <= ms(edited["end"])
    assert [s["hr"] for s in after[: len(before)]] != [s["hr"] for s in before]
    # Sampled anew: no instant of the old stream is in the new one.
    assert {s["timestamp"] for s in after}.isdisjoint(s["timestamp"] for s in before)


def test_stream_calls_are_rate_limited_and_logged(whoop_sandbox_factory, make_client):
    sandbox = whoop_sandbox_factory(days=5, athletes=1, now=NOW, rate_limits=[(3, 60)])
    api = make_client(sandbox)
    sleep = sandbox.record_near("sleep", athlete=0, days_ago=2)
    statuses = [api.get(f"/v2/activity/sleep/{sleep['id']}/stream").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    logged = [e for e in sandbox.request_log if e["path"].endswith("/stream")]
    assert [e["status"] for e in logged] == statuses
