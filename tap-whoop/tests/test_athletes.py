"""Many athletes under one app: one run for all, per-athlete failure, statuses, snapshots, the CLI."""

from __future__ import annotations

import json
import logging

import pytest
from click.testing import CliRunner
from tap_whoop.cli import commands
from tap_whoop.stores import open_token_store
from tap_whoop.streams.snapshots import DAY_SECONDS, WhoopSnapshotStream
from tap_whoop.whoop import REVOKE_PATH

from .conftest import (
    API_ROOT,
    COLLECTION_PATHS,
    COLLECTIONS,
    PATHS,
    api_requests,
    enroll,
    partitions,
    run_tap,
)

# Time arithmetic: the date lane (make test-dates) runs this module at every date it tries.
pytestmark = pytest.mark.clock

START = "2020-01-01T00:00:00Z"
PROFILE = API_ROOT + PATHS["profile"]
BODY = API_ROOT + PATHS["body_measurement"]
TOKEN_PATH = "/oauth/oauth2/token"
KINDS = {"cycles": "cycle", "sleeps": "sleep", "recoveries": "recovery", "workouts": "workout"}


@pytest.fixture
def team(whoop_sandbox_factory, make_config):
    """Five athletes with 30 days each, enrolled; the config has no refresh_token of its own."""
    sandbox = whoop_sandbox_factory(seed=21, days=30, athletes=5, rate_limits=[])
    config = make_config(sandbox, start_date=START)
    config.pop("refresh_token")
    user_ids = enroll(sandbox, config, range(5))
    sandbox.clear_log()
    return sandbox, config, user_ids


def list_json(config: dict, tmp_path) -> list[dict]:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    result = CliRunner().invoke(commands, ["athletes", "list", "--config", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def requests_by_athlete(sandbox, path: str) -> dict[int, int]:
    counts: dict[int, int] = {}
    for entry in api_requests(sandbox, path):
        counts[entry["user_id"]] = counts.get(entry["user_id"], 0) + 1
    return counts


def test_one_run_syncs_every_athlete_each_with_their_own_tokens(team):
    sandbox, config, user_ids = team
    result = run_tap(config)
    assert result.error is None
    for stream in COLLECTIONS:
        by_user = {}
        for record in result.records[stream]:
            by_user.setdefault(record["user_id"], []).append(record)
        assert set(by_user) == set(user_ids), stream
        for index, user_id in enumerate(user_ids):
            kind = KINDS[stream]
            served = {r.key for r in sandbox.athletes[index].records[kind].items}
            key = "cycle_id" if stream == "recoveries" else "id"
            assert {r[key] for r in by_user[user_id]} == served, (stream, user_id)
        # Every request carried the token of the athlete whose partition it read.
        for entry in api_requests(sandbox, COLLECTION_PATHS[stream]):
            assert entry["user_id"] in user_ids
        assert set(partitions(result.state, stream)) == set(user_ids)
    assert {r["user_id"] for r in result.records["profile"]} == set(user_ids)
    assert {r["user_id"] for r in result.records["body_measurement"]} == set(user_ids)
    assert sorted(r["user_id"] for r in result.records["athletes"]) == sorted(user_ids)


def test_steady_state_costs_four_list_calls_per_athlete_and_snapshots_are_rare(team, monkeypatch):
    sandbox, config, user_ids = team
    first = run_tap(config)
    assert first.error is None
    sandbox.clear_log()
    second = run_tap(config, state=first.state)
    assert second.error is None
    for stream in COLLECTIONS:
        assert requests_by_athlete(sandbox, COLLECTION_PATHS[stream]) == dict.fromkeys(user_ids, 1), stream
    assert api_requests(sandbox, PROFILE) == []
    assert api_requests(sandbox, BODY) == []
    total = [r for r in sandbox.request_log if r["path"].startswith(API_ROOT + "/")]
    assert len(total) == 4 * len(user_ids)

    # Every 7 days by default: over the next week (daily runs) each athlete's pair is read exactly once, at a
    # point of the week set by their user_id, so they do not all fall due in one run.
    now = WhoopSnapshotStream.clock()
    state, due_days = second.state, {}
    for day in range(1, 8):
        monkeypatch.setattr(WhoopSnapshotStream, "clock", staticmethod(lambda d=day: now + d * DAY_SECONDS))
        sandbox.clear_log()
        state = run_tap(config, state=state).state
        for user_id in requests_by_athlete(sandbox, PROFILE):
            due_days.setdefault(user_id, []).append(day)
        assert requests_by_athlete(sandbox, PROFILE) == requests_by_athlete(sandbox, BODY)
    assert {u: len(days) for u, days in due_days.items()} == dict.fromkeys(user_ids, 1)
    assert len({days[0] for days in due_days.values()}) > 1, "spread over the week"


def test_profile_refresh_days_one_reads_them_daily_but_never_twice_a_day(team, monkeypatch):
    sandbox, config, user_ids = team
    config = {**config, "profile_refresh_days": 1}
    state = run_tap(config).state
    now = WhoopSnapshotStream.clock()
    sandbox.clear_log()
    monkeypatch.setattr(WhoopSnapshotStream, "clock", staticmethod(lambda: now + 10 * 3600))
    state = run_tap(config, state=state).state
    assert api_requests(sandbox, BODY) == []
    monkeypatch.setattr(WhoopSnapshotStream, "clock", staticmethod(lambda: now + 24 * 3600 + 60))
    run_tap(config, state=state)
    assert requests_by_athlete(sandbox, BODY) == dict.fromkeys(user_ids, 1)


def test_a_revoked_athlete_is_skipped_and_the_others_complete(team, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="tap-whoop")
    sandbox, config, user_ids = team
    first = run_tap(config)
    assert first.error is None
    revoked = user_ids[2]
    sandbox.revoke_consent(athlete=2)
    sandbox.expire_access_tokens()  # everyone needs a refresh: the revoked athlete's is refused
    sandbox.add_past_workout(athlete=0, days_ago=3)
    sandbox.clear_log()

    second = run_tap(config, state=first.state)
    assert second.error is None, "the others were synced, so the run succeeds"
    for stream in COLLECTIONS:
        before, after = partitions(first.state, stream), partitions(second.state, stream)
        assert after[revoked] == before[revoked], f"{stream}: the revoked athlete's state is unchanged"
        for user_id in set(user_ids) - {revoked}:
            assert after[user_id]["replication_key_value"] >= before[user_id]["replication_key_value"]
    assert any(r["user_id"] == user_ids[0] for r in second.records["workouts"])
    assert f"Athlete {revoked}: skipped (revoked)" in caplog.text
    assert "tap-whoop athletes invite" in caplog.text
    listed = {a["user_id"]: a for a in list_json(config, tmp_path)}
    assert listed[revoked]["status"] == "revoked"
    assert "invalid_grant" in listed[revoked]["status_reason"]
    assert {listed[u]["status"] for u in user_ids if u != revoked} == {"ok"}
    assert all(listed[u]["last_synced_at"] for u in user_ids)
    athletes = {r["user_id"]: r for r in second.records["athletes"]}
    assert athletes[revoked]["status"] == "revoked"

    # The next run does not knock on WHOOP's door for them again; re-enrolling makes them ok.
    sandbox.clear_log()
    third = run_tap(config, state=second.state)
    assert third.error is None
    assert revoked not in {r["user_id"] for r in sandbox.request_log}
    enroll(sandbox, config, [2])
    assert {a["user_id"]: a["status"] for a in list_json(config, tmp_path)}[revoked] == "ok"


def test_a_deactivated_membership_costs_one_call_and_recovers(team, tmp_path):
    sandbox, config, user_ids = team
    first = run_tap(config)
    sandbox.deactivate(athlete=1)
    sandbox.clear_log()
    second = run_tap(config, state=first.state)
    assert second.error is None
    calls = [r for r in sandbox.request_log if r["user_id"] == user_ids[1] and r["path"].startswith("/dev")]
    assert [r["status"] for r in calls] == [403]
    assert {a["user_id"]: a["status"] for a in list_json(config, tmp_path)}[user_ids[1]] == "deactivated"
    sandbox.deactivate(athlete=1, active=True)
    third = run_tap(config, state=second.state)
    assert third.error is None
    assert {a["user_id"]: a["status"] for a in list_json(config, tmp_path)}[user_ids[1]] == "ok"


def test_the_athletes_setting_limits_the_run(team):
    sandbox, config, user_ids = team
    result = run_tap({**config, "athletes": [user_ids[3]]})
    assert result.error is None
    assert {r["user_id"] for r in sandbox.request_log if r["user_id"]} == {user_ids[3]}
    assert set(partitions(result.state, "cycles")) == {user_ids[3]}


def test_no_athlete_that_can_be_synced_fails_in_one_line(whoop_sandbox_factory, make_config, team):
    sandbox, config, user_ids = team
    empty = {**config, "token_store": config["token_store"] + ".empty"}
    result = run_tap(empty)
    assert "No athlete to sync" in str(result.error)
    assert "tap-whoop auth" in str(result.error)
    for index in range(5):
        sandbox.revoke_consent(athlete=index)
    sandbox.expire_access_tokens()
    result = run_tap(config)
    message = str(result.error)
    assert message.startswith("No athlete could be synced.")
    assert all(str(u) in message for u in user_ids)
    assert "sbx-" not in message


def test_athletes_add_list_remove_and_revoke_on_the_command_line(
    whoop_sandbox_factory, make_config, tmp_path
):
    sandbox = whoop_sandbox_factory(seed=22, days=5, athletes=2, rate_limits=[])
    config = make_config(sandbox)
    config.pop("refresh_token")
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    runner = CliRunner()
    token = sandbox.grant_refresh_token(athlete=1)
    add = ["athletes", "add", "--config", str(path), "--refresh-token", "-"]
    added = runner.invoke(commands, add, input=token)
    assert added.exit_code == 0, added.output
    user_id = sandbox.athletes[1].user_id
    assert f"Enrolled athlete {user_id}" in added.output
    assert token not in added.output
    bad = runner.invoke(commands, ["athletes", "add", "--config", str(path), "--refresh-token", token])
    assert bad.exit_code == 2
    assert "stdin" in bad.output

    table = runner.invoke(commands, ["athletes", "list", "--config", str(path)])
    assert table.exit_code == 0
    assert str(user_id) in table.stdout
    assert sandbox.athletes[1].profile["first_name"] in table.stdout
    assert "sbx-" not in table.stdout

    sandbox.clear_log()
    removed = runner.invoke(commands, ["athletes", "remove", "--config", str(path), str(user_id), "--revoke"])
    assert removed.exit_code == 0, removed.output
    revokes = [r["method"] for r in sandbox.request_log if r["path"] == API_ROOT + REVOKE_PATH]
    assert revokes == ["DELETE"]
    record = open_token_store(config["token_store"]).records(config["client_id"])[str(user_id)]
    assert (record.refresh_token, record.access_token, record.first_name) == (None, None, None)
    assert list_json(config, tmp_path) == [{**list_json(config, tmp_path)[0], "status": "revoked"}]
    # WHOOP no longer honours the old tokens.
    refused = sandbox.oauth.lookup(token)
    assert refused is None
    missing = runner.invoke(commands, ["athletes", "remove", "--config", str(path), "123"])
    assert missing.exit_code == 1
    assert "No athlete 123" in missing.output
