"""Point 3: limit, nextToken, ordering and start/end filters exactly as the spec describes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

# Time arithmetic: the date lane (make test-dates) runs this module at every date it tries.
pytestmark = pytest.mark.clock

COLLECTIONS = ["/v2/cycle", "/v2/recovery", "/v2/activity/sleep", "/v2/activity/workout"]
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def sandbox(whoop_sandbox_factory):
    return whoop_sandbox_factory(days=60, athletes=2, now=NOW, rate_limits=[])


@pytest.fixture
def api(sandbox, make_client):
    return make_client(sandbox)


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def sort_time(sandbox, path: str, record: dict) -> str:
    if path == "/v2/recovery":
        return sandbox.find("sleep", record["sleep_id"]).body["start"]
    return record["start"]


@pytest.mark.parametrize("path", COLLECTIONS)
def test_limit_default_max_and_out_of_range(api, path):
    assert len(api.get(path).json()["records"]) == 10
    assert len(api.get(path, limit=25).json()["records"]) == 25
    assert len(api.get(path, limit=1).json()["records"]) == 1
    for bad in (26, 0, -1, "ten"):
        response = api.get(path, limit=bad)
        assert response.status_code == 400, bad
        assert "limit" in response.json()["message"]


@pytest.mark.parametrize("path", COLLECTIONS)
def test_paging_returns_every_record_once_newest_first(sandbox, api, path):
    kind = {"/v2/cycle": "cycle", "/v2/recovery": "recovery"}.get(path, path.rsplit("/", 1)[-1])
    expected = len(sandbox.athletes[0].records[kind].items)
    records = api.all_records(path)
    key = "cycle_id" if path == "/v2/recovery" else "id"
    assert len(records) == expected > 40
    assert len({r[key] for r in records}) == expected
    times = [sort_time(sandbox, path, r) for r in records]
    assert times == sorted(times, reverse=True)
    # Only athlete 0's records: tokens are per athlete.
    assert {r["user_id"] for r in records} == {sandbox.athletes[0].user_id}
    last = api.get(path, limit=25, nextToken=api.get(path, limit=25).json()["next_token"])
    assert last.status_code == 200


def test_next_token_is_opaque_and_checked(api):
    token = api.get("/v2/cycle", limit=5).json()["next_token"]
    assert "cycle" not in token
    assert "1000" not in token
    for bad in ("garbage", token[:-2] + "xx", token.upper()):
        response = api.get("/v2/cycle", nextToken=bad)
        assert response.status_code == 400
        assert "nextToken" in response.json()["message"]
    # A token belongs to its own collection.
    assert api.get("/v2/activity/sleep", nextToken=token).status_code == 400


def test_last_page_has_no_next_token(api):
    records = api.all_records("/v2/activity/workout")
    response = api.get("/v2/activity/workout", limit=25, start=records[2]["start"])
    assert "next_token" not in response.json()
    assert len(response.json()["records"]) == 3


@pytest.mark.parametrize("path", ["/v2/cycle", "/v2/activity/sleep", "/v2/activity/workout"])
def test_start_inclusive_end_exclusive_on_record_times(api, path):
    records = api.all_records(path)
    target = records[len(records) // 2]
    # end == a record's start: that record is excluded (exclusive); end one ms later includes it.
    at_start = api.all_records(path, end=target["start"])
    assert target["id"] not in {r["id"] for r in at_start}
    after_start = api.all_records(path, end=iso(parse(target["start"]) + timedelta(milliseconds=1)))
    assert after_start[0]["id"] == target["id"]
    # start == a record's end: still included ("during, inclusive"); one ms later it is not.
    at_end = api.all_records(path, start=target["end"])
    assert at_end[-1]["id"] == target["id"]
    past_end = api.all_records(path, start=iso(parse(target["end"]) + timedelta(milliseconds=1)))
    assert target["id"] not in {r["id"] for r in past_end}
    # A window inside a record returns that record (it intersects).
    middle = parse(target["start"]) + (parse(target["end"]) - parse(target["start"])) / 2
    inside = api.all_records(path, start=iso(middle), end=iso(middle + timedelta(seconds=1)))
    assert target["id"] in {r["id"] for r in inside}
    # Every record returned for a window really overlaps it.
    lo, hi = records[-20]["start"], records[-5]["start"]
    for r in api.all_records(path, start=lo, end=hi):
        assert parse(r["start"]) < parse(hi)
        assert "end" not in r or parse(r["end"]) >= parse(lo)


def test_open_cycle_matches_any_start_and_end_defaults_to_now(api):
    newest = api.get("/v2/cycle", limit=1).json()["records"][0]
    assert "end" not in newest
    assert api.get("/v2/cycle", start=iso(NOW), limit=1).json()["records"] == [newest]
    # An offset other than Z is understood.
    local = "2026-03-01T07:00:00-05:00"
    assert api.get("/v2/cycle", start=local, limit=1).json()["records"] == [newest]
    assert api.get("/v2/cycle", start="yesterday").status_code == 400


def test_single_record_lookups(sandbox, api, make_client):
    cycle = api.get("/v2/cycle", limit=2).json()["records"][1]
    assert api.get(f"/v2/cycle/{cycle['id']}").json() == cycle
    assert api.get(f"/v2/cycle/{cycle['id']}/recovery").json()["cycle_id"] == cycle["id"]
    assert api.get("/v2/cycle/999").status_code == 404
    assert api.get("/v2/cycle/999/sleep").status_code == 404
    assert api.get("/v2/cycle/999/recovery").status_code == 404
    assert api.get("/v2/cycle/abc").status_code == 400
    assert api.get("/v2/activity/sleep/not-a-uuid").status_code == 400
    assert api.get("/v2/activity/sleep/00000000-0000-4000-8000-000000000000").status_code == 404
    assert api.get("/v2/activity/workout/00000000-0000-4000-8000-000000000000").status_code == 404
    assert api.get("/v2/nothing-here").status_code == 404
    # Another athlete's records are not found with this athlete's token.
    other = make_client(sandbox, athlete=1)
    theirs = other.get("/v2/activity/workout", limit=1).json()["records"][0]
    assert other.get(f"/v2/activity/workout/{theirs['id']}").status_code == 200
    assert api.get(f"/v2/activity/workout/{theirs['id']}").status_code == 404
    assert api.get("/v2/user/profile/basic").json()["user_id"] == sandbox.athletes[0].user_id
    assert other.get("/v2/user/profile/basic").json()["user_id"] == sandbox.athletes[1].user_id


def test_unknown_query_parameter_is_rejected(api):
    response = api.get("/v2/cycle", next_token="x")
    assert response.status_code == 400
    assert "next_token" in response.json()["message"]
