"""Every kind of call to WHOOP goes through the one client: each rides out a burst of 503s and dropped
connections.

The kinds: the profile call that adopts the configured athlete (a run's very first call), collection pages,
the body measurement, lookups by id (reconciliation, webhook events), revoke, and the token endpoint (whose
dropped connection means "maybe rotated", not "try again": tests/test_auth_refresh.py holds that).
"""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest
from tap_whoop import whoop
from tap_whoop.athletes.registry import AthleteRegistry
from tap_whoop.auth.authenticator import WhoopAuthenticator
from tap_whoop.client.api import WhoopClient
from tap_whoop.deletions.events import WebhookEvent
from tap_whoop.stores import open_event_log

from .conftest import API_ROOT, COLLECTION_PATHS, PATHS, run_tap

# A burst each call must ride out: more 503s in a row than the old profile call's three tries took.
BURSTS = {"503": 4, "drop": 2}
FAULTS = list(BURSTS)


@pytest.fixture
def sandbox(whoop_sandbox_factory):
    return whoop_sandbox_factory(seed=21, days=30, athletes=1, rate_limits=[])


def inject(sandbox, fault: str, path: str) -> None:
    sandbox.inject_fault(fault, path_prefix=path, count=BURSTS[fault])


def met(sandbox, fault: str) -> int:
    """How many of the injected faults WHOOP's side served (the sandbox logs just after answering)."""
    deadline = time.monotonic() + 3
    while True:
        count = sum(1 for entry in sandbox.request_log if entry.get("fault") == fault)
        if count >= BURSTS[fault] or time.monotonic() > deadline:
            return count
        time.sleep(0.05)


def test_the_burst_is_longer_than_the_old_profile_loop_and_shorter_than_the_policy():
    assert 3 < BURSTS["503"] < WhoopClient.policy.tries


@pytest.mark.parametrize("fault", FAULTS)
def test_the_first_call_of_a_run_adopts_the_athlete(sandbox, config, fault):
    inject(sandbox, fault, API_ROOT + whoop.PROFILE_PATH)
    result = run_tap(config)
    assert result.error is None
    assert [r["user_id"] for r in result.records["profile"]] == [sandbox.athletes[0].user_id]
    assert met(sandbox, fault) == BURSTS[fault]


@pytest.mark.parametrize("stream", ["cycles", "body_measurement"])
@pytest.mark.parametrize("fault", FAULTS)
def test_collection_pages_and_the_body_measurement(sandbox, config, baseline, stream, fault):
    inject(sandbox, fault, API_ROOT + PATHS[stream])
    result = run_tap(config)  # from the start again: every page and the body are read
    assert result.error is None
    assert result.records[stream] == baseline.records[stream]
    assert met(sandbox, fault) == BURSTS[fault]


@pytest.mark.parametrize("fault", FAULTS)
def test_a_lookup_that_confirms_a_deletion(sandbox, config, baseline, fault):
    workout = sandbox.add_past_workout(athlete=0, days_ago=3)
    seen = run_tap(config, state=baseline.state)  # the workout is in the window the next read reconciles
    assert workout in seen.served("workouts")
    sandbox.delete_record("workout", workout["id"])
    inject(sandbox, fault, COLLECTION_PATHS["workouts"] + "/")  # the lookups by id, not the pages
    result = run_tap(config, state=seen.state)
    assert result.error is None
    assert [r["id"] for r in result.records["deleted_records"]] == [workout["id"]]
    assert met(sandbox, fault) == BURSTS[fault]


@pytest.mark.parametrize("fault", FAULTS)
def test_a_record_named_by_a_webhook(sandbox, config, baseline, fault):
    old = sandbox.add_past_workout(athlete=0, days_ago=25)  # outside the lookback window: the event finds it
    event = WebhookEvent(sandbox.athletes[0].user_id, old["id"], "workout.updated", str(uuid.uuid4()))
    assert open_event_log(config["token_store"], config["client_id"]).append(event, dt.datetime.now(dt.UTC))
    inject(sandbox, fault, COLLECTION_PATHS["workouts"] + "/")
    result = run_tap(config, state=baseline.state)
    assert result.error is None
    assert old in result.served("workouts")
    assert met(sandbox, fault) == BURSTS[fault]


@pytest.mark.parametrize("fault", FAULTS)
def test_revoking_an_athletes_access(sandbox, config, baseline, fault):
    user_id = sandbox.athletes[0].user_id
    inject(sandbox, fault, API_ROOT + whoop.REVOKE_PATH)
    AthleteRegistry(config).remove(user_id, revoke=True)
    revokes = [e for e in sandbox.request_log if e["path"] == API_ROOT + whoop.REVOKE_PATH]
    assert [e["status"] for e in revokes if e.get("fault") is None] == [204]
    assert met(sandbox, fault) == BURSTS[fault]


def test_the_token_endpoint_rides_out_503s_and_says_so(sandbox, config, caplog):
    inject(sandbox, "503", "/oauth/oauth2/token")
    with caplog.at_level("WARNING", logger="tap-whoop"):
        assert WhoopAuthenticator(config).access_token()
    assert met(sandbox, "503") == BURSTS["503"]
    retries = [r.getMessage() for r in caplog.records if "trying again" in r.getMessage()]
    assert len(retries) == BURSTS["503"]
    assert retries[0].startswith("POST /oauth/oauth2/token: HTTP 503")
    assert retries[-1].endswith(f"(try {BURSTS['503'] + 1} of {WhoopClient.policy.tries})")
