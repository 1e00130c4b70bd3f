"""A full sync against the sandbox: every stream, every record, paging and request parameters."""

from __future__ import annotations

import datetime as dt
import math
from urllib.parse import parse_qs

import pytest
from tap_whoop.sync.scheduler import BACKFILL_PAGES_PER_TURN
from tap_whoop.timestamps import format_datetime, parse_datetime

from .conftest import API_ROOT, COLLECTION_PATHS, COLLECTIONS, PATHS, api_requests, bookmark, run_tap

# Time arithmetic: the date lane (make test-dates) runs this module at every date it tries.
pytestmark = pytest.mark.clock

START = "2020-01-01T00:00:00Z"


@pytest.fixture
def sandbox(whoop_sandbox_factory):
    return whoop_sandbox_factory(seed=7, days=60, athletes=1, rate_limits=[])


def _params(entry: dict) -> dict:
    params = entry["params"]
    if isinstance(params, str):
        return {k: v[0] for k, v in parse_qs(params).items()}
    return {k: (v[0] if isinstance(v, list) else v) for k, v in params.items()}


def test_full_sync_reads_every_record_once(sandbox, make_config):
    result = run_tap(make_config(sandbox, start_date=START))
    assert result.error is None
    user_id = sandbox.athletes[0].user_id
    assert result.records["profile"] == [
        {**result.records["profile"][0], "user_id": user_id},
    ]
    [body] = result.records["body_measurement"]
    assert body["user_id"] == user_id
    assert {"height_meter", "weight_kilogram", "max_heart_rate"} <= set(body)
    profile_calls = api_requests(sandbox, API_ROOT + PATHS["profile"])
    assert len(profile_calls) == 1, "the call that learnt whose tokens these are also fed the profile stream"
    for stream in COLLECTIONS:
        records = result.records[stream]
        key = "cycle_id" if stream == "recoveries" else "id"
        keys = [r[key] for r in records]
        assert records, stream
        assert len(keys) == len(set(keys)), f"{stream}: duplicate records"
        assert {r["user_id"] for r in records} == {user_id}
        pages = api_requests(sandbox, COLLECTION_PATHS[stream])
        assert all(_params(p)["limit"] in {"25", 25} for p in pages)
        # First the head (the last lookback_days), then the history newest first down to start_date, in
        # turns that each begin without a nextToken: at most one page more than one pass would take.
        head, *history = pages
        head_start = _params(head)["start"]
        assert START < head_start < format_datetime(dt.datetime.now(dt.UTC) - dt.timedelta(days=13))
        assert history, stream
        assert {_params(p)["start"] for p in history} == {"2020-01-01T00:00:00.000Z"}
        one_ms = dt.timedelta(milliseconds=1)
        assert _params(history[0])["end"] == format_datetime(parse_datetime(head_start) + one_ms)
        turns = math.ceil(len(history) / BACKFILL_PAGES_PER_TURN)
        assert len(pages) <= math.ceil(len(records) / 25) + 1 + turns
        assert bookmark(result.state, stream) == max(r["updated_at"] for r in records)
    assert result.records["athletes"] == [
        {**result.records["athletes"][0], "user_id": user_id, "status": "ok"},
    ]


def test_record_timestamps_are_utc(sandbox, make_config):
    result = run_tap(make_config(sandbox, start_date=START))
    for stream in COLLECTIONS:
        for record in result.records[stream]:
            for field in ("created_at", "updated_at"):
                assert record[field].endswith("Z"), (stream, field, record[field])


def test_end_date_bounds_the_window_and_the_bookmark(sandbox, make_config):
    end_date = "2030-01-01T00:00:00Z"  # in the future: nothing is excluded, yet the window is explicit
    result = run_tap(make_config(sandbox, start_date=START, end_date=end_date))
    assert result.error is None
    for stream in COLLECTIONS:
        first = _params(api_requests(sandbox, COLLECTION_PATHS[stream])[0])
        assert first["end"] == "2030-01-01T00:00:00.000Z"

    sandbox.clear_log()
    past_end = "2000-01-01T00:00:00Z"
    bounded = run_tap(make_config(sandbox, end_date=past_end))
    for stream in COLLECTIONS:
        assert bounded.records[stream] == []
        # Nothing read, nothing claimed: no bookmark beyond end_date.
        value = bookmark(bounded.state, stream)
        assert value is None or value <= "2000-01-01T00:00:00.000Z"


def test_pagination_loop_guard(sandbox, make_config):
    """A next_token leading back to an earlier page stops the stream before any duplicate is emitted."""
    clean = run_tap(make_config(sandbox, start_date=START))
    sandbox.inject_fault("next_token_loop", path_prefix=COLLECTION_PATHS["cycles"], count=1)
    looping = run_tap(make_config(sandbox, start_date=START))
    message = str(looping.error)
    assert "cycles" in message
    assert PATHS["cycles"] in message
    assert "pagination loop" in message
    ids = [r["id"] for r in looping.records["cycles"]]
    assert len(ids) == len(set(ids)), "no page is emitted twice"
    assert len(api_requests(sandbox, COLLECTION_PATHS["cycles"])) < 10, "the loop was not followed"
    assert bookmark(looping.state, "cycles") is None

    resumed = run_tap(make_config(sandbox, start_date=START), state=looping.state)
    assert resumed.error is None
    expected = sorted(r["id"] for r in clean.records["cycles"])
    assert sorted(r["id"] for r in resumed.records["cycles"]) == expected


def test_bounded_backfill_then_incremental_skips_nothing(sandbox, make_config):
    """A run with end_date in mid-history must not leave a bookmark that makes the next run skip the rest."""
    full = run_tap(make_config(sandbox, start_date=START))
    end_date = format_datetime(dt.datetime.now(dt.UTC) - dt.timedelta(days=30))
    bounded = run_tap(make_config(sandbox, start_date=START, end_date=end_date))
    assert bounded.error is None
    for stream in COLLECTIONS:
        value = bookmark(bounded.state, stream)
        assert value is None or value <= end_date, stream
    rest = run_tap(make_config(sandbox, start_date=START), state=bounded.state)
    assert rest.error is None
    for stream in COLLECTIONS:
        key = "cycle_id" if stream == "recoveries" else "id"
        seen = {r[key] for r in bounded.records[stream]} | {r[key] for r in rest.records[stream]}
        assert seen == {r[key] for r in full.records[stream]}, stream
        assert len(bounded.records[stream]) < len(full.records[stream]), "end_date did bound the first run"
