"""The authenticator against the sandbox: rotation, reuse, config precedence, 401s, faults, redaction."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time

import pytest
import requests
import sqlalchemy as sa
from tap_whoop.auth.authenticator import WhoopAuthenticator
from tap_whoop.auth.authorize import save_tokens
from tap_whoop.client import api
from tap_whoop.client.api import WhoopClient
from tap_whoop.errors import TokenRequestRejected, WhoopAuthError
from tap_whoop.stores import open_token_store
from tap_whoop.stores.tokens.record import TokenKey

from .conftest import PATHS, refresh_outside_the_tap

# Time arithmetic: the date lane (make test-dates) runs this module at every date it tries.
pytestmark = pytest.mark.clock

TOKEN_PATH = "/oauth/oauth2/token"
PROFILE = PATHS["profile"]


@pytest.fixture
def sb(whoop_sandbox_factory):
    return whoop_sandbox_factory(days=2, athletes=1, rate_limits=[])


@pytest.fixture
def config(sb, tmp_path):
    return {
        "client_id": sb.client_id,
        "client_secret": sb.client_secret,
        "refresh_token": sb.grant_refresh_token(),
        "token_url": sb.token_url,
        "token_store": str(tmp_path / "tokens.json"),
    }


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


def token_posts(sb, expect: int = 0) -> list[dict]:
    """Token requests in the sandbox log, once it holds at least `expect` of them (or after 5 s).

    The sandbox logs a request just after answering it, so a client may run ahead of its log entry.
    """
    deadline = time.monotonic() + 5
    while True:
        posts = [r for r in sb.request_log if r["path"] == TOKEN_PATH]
        if len(posts) >= expect or time.monotonic() > deadline:
            return posts
        time.sleep(0.02)


def get_profile(sb, authenticator) -> requests.Response:
    return requests.get(sb.api_url + PROFILE, auth=authenticator, timeout=10)


def stored(config):
    return open_token_store(config["token_store"]).load(TokenKey(config["client_id"]))


def expire_stored_access_token(config) -> None:
    store = open_token_store(config["token_store"])
    with store.transaction(TokenKey(config["client_id"])) as txn:
        record = txn.record
        record.access_expires_at = 0
        txn.save(record)


def assert_no_secrets(text: str, *secrets: str | None) -> None:
    assert "sbx-rt-" not in text
    assert "sbx-at-" not in text
    for secret in secrets:
        if secret:
            assert secret not in text


def test_first_run_rotates_and_persists_before_use(sb, config, logs):
    authenticator = WhoopAuthenticator(config, logging.getLogger("tap-whoop"))
    assert get_profile(sb, authenticator).status_code == 200
    record = stored(config)
    assert record.refresh_token != config["refresh_token"]
    assert record.source == "refresh"
    assert record.refresh_started_at is None
    assert record.knows_config_token(config["refresh_token"])
    assert len(token_posts(sb, 1)) == 1
    # The persisted token is the live one: the config token was consumed by the rotation.
    assert refresh_outside_the_tap(sb, config["refresh_token"]).json()["error"] == "invalid_grant"
    assert_no_secrets(logs.text + repr(authenticator), config["refresh_token"], sb.client_secret)


def test_valid_access_token_is_reused_across_runs(sb, config):
    assert get_profile(sb, WhoopAuthenticator(config)).status_code == 200
    for _ in range(3):  # three more "runs"
        assert get_profile(sb, WhoopAuthenticator(config)).status_code == 200
    assert len(token_posts(sb, 1)) == 1


def test_expired_stored_access_token_is_refreshed_with_the_stored_refresh_token(sb, config):
    assert get_profile(sb, WhoopAuthenticator(config)).status_code == 200
    before = stored(config)
    expire_stored_access_token(config)
    assert get_profile(sb, WhoopAuthenticator(config)).status_code == 200
    after = stored(config)
    assert after.refresh_token != before.refresh_token
    assert len(token_posts(sb, 2)) == 2


def test_unauthorized_refreshes_once_across_threads(sb, config):
    authenticator = WhoopAuthenticator(config)
    first = authenticator.access_token()
    sb.expire_access_tokens()
    assert get_profile(sb, authenticator).status_code == 401

    results: list[str] = []

    def on_401() -> None:
        authenticator.handle_unauthorized(first)
        results.append(authenticator.access_token())

    threads = [threading.Thread(target=on_401) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(set(results)) == 1
    assert results[0] != first
    assert len(token_posts(sb, 2)) == 2  # the first refresh and exactly one after the 401
    assert get_profile(sb, authenticator).status_code == 200
    # A later run must not pick the rejected token up again either.
    assert stored(config).access_token == results[0]


def test_new_refresh_token_in_config_wins_without_clearing_anything(sb, config):
    assert get_profile(sb, WhoopAuthenticator(config)).status_code == 200
    reauthorized = {**config, "refresh_token": sb.grant_refresh_token()}
    authenticator = WhoopAuthenticator(reauthorized)
    assert get_profile(sb, authenticator).status_code == 200
    assert len(token_posts(sb, 2)) == 2  # the valid stored access token was not used: the new grant took over
    record = stored(config)
    assert record.knows_config_token(reauthorized["refresh_token"])
    assert record.knows_config_token(config["refresh_token"])
    # From now on the store leads again: a run with the same config refreshes nothing.
    assert get_profile(sb, WhoopAuthenticator(reauthorized)).status_code == 200
    assert len(token_posts(sb, 2)) == 2


def test_tokens_from_tap_whoop_auth_are_not_overridden_by_the_older_config_token(sb, config):
    # `tap-whoop auth` wrote the store while config still holds the token from an earlier authorization.
    from .conftest import run_tap

    body = refresh_outside_the_tap(sb, sb.grant_refresh_token()).json()
    token_posts(sb, 1)  # logged
    user_id, _ = save_tokens({**config, "api_url": sb.api_url}, body)
    sb.clear_log()
    result = run_tap({**config, "api_url": sb.api_url, "start_date": "2020-01-01T00:00:00Z"})
    assert result.error is None
    assert token_posts(sb) == []  # the stored access token was used; the config token was not spent
    records = open_token_store(config["token_store"]).records(config["client_id"])
    assert set(records) == {str(user_id)}
    assert records[str(user_id)].knows_config_token(config["refresh_token"])


def test_stale_unknown_config_token_falls_back_to_the_store(sb, config, logs):
    assert get_profile(sb, WhoopAuthenticator(config)).status_code == 200
    dead = sb.grant_refresh_token()
    refresh_outside_the_tap(sb, dead)  # rotated elsewhere: `dead` is used up
    expire_stored_access_token(config)
    stale = {**config, "refresh_token": dead}
    assert get_profile(sb, WhoopAuthenticator(stale)).status_code == 200
    assert "continuing with the token in" in logs.text
    assert stored(config).knows_config_token(dead)  # never tried again
    expire_stored_access_token(config)
    token_posts(sb, 4)  # seeding, the rotation elsewhere, the stale config token, the store's token
    sb.clear_log()
    assert get_profile(sb, WhoopAuthenticator(stale)).status_code == 200
    assert len(token_posts(sb, 1)) == 1
    assert_no_secrets(logs.text, dead)


def test_invalid_grant_tells_the_user_to_run_auth(sb, config):
    refresh_outside_the_tap(sb, config["refresh_token"])
    with pytest.raises(WhoopAuthError) as err:
        WhoopAuthenticator(config).access_token()
    message = str(err.value)
    assert "invalid_grant" in message
    assert "tap-whoop auth" in message
    assert "refresh_token setting" in message
    assert_no_secrets(message + repr(err.value), config["refresh_token"], config["client_id"])


def test_missing_tokens_and_credentials_fail_clearly(sb, config):
    with pytest.raises(WhoopAuthError, match="tap-whoop auth") as err:
        WhoopAuthenticator({**config, "refresh_token": None}).access_token()
    assert config["token_store"] in str(err.value)
    with pytest.raises(WhoopAuthError, match="client_secret"):
        WhoopAuthenticator({**config, "client_secret": ""})
    with pytest.raises(WhoopAuthError, match="invalid_client") as err:
        WhoopAuthenticator({**config, "client_secret": "sbx-wrong"}).access_token()
    assert "not used up" in str(err.value)
    assert get_profile(sb, WhoopAuthenticator(config)).status_code == 200  # ... and indeed it was not


@pytest.mark.parametrize("fault", ["500", "502", "timeout", "drop"])
def test_token_post_is_not_resent_after_it_may_have_reached_whoop(sb, config, fault, monkeypatch):
    monkeypatch.setattr(WhoopClient, "policy", dataclasses.replace(WhoopClient.policy, timeout=(2.0, 0.5)))
    sb.inject_fault(fault, path_prefix=TOKEN_PATH, delay=1.0 if fault == "timeout" else None)
    authenticator = WhoopAuthenticator(config)
    with pytest.raises(WhoopAuthError) as err:
        authenticator.access_token()
    with pytest.raises(WhoopAuthError):  # later requests of the same run do not try again either
        authenticator.access_token()
    time.sleep(0.2)  # a resend would have been immediate
    assert len(token_posts(sb, 1)) == 1  # not resent
    message = str(err.value)
    assert "not sent again" in message
    assert_no_secrets(message, config["refresh_token"])
    assert stored(config).refresh_started_at is not None  # the intent record stays for diagnosis
    # The sandbox failed before rotating: the next run spends the same token successfully.
    assert get_profile(sb, WhoopAuthenticator(config)).status_code == 200
    assert stored(config).refresh_started_at is None


def test_uncertain_failure_falls_back_on_a_still_valid_access_token(sb, config, logs):
    assert get_profile(sb, WhoopAuthenticator(config)).status_code == 200
    record = stored(config)
    store = open_token_store(config["token_store"])
    with store.transaction(TokenKey(config["client_id"])) as txn:  # inside the margin, still valid
        txn.record.access_expires_at = time.time() + 120
        txn.save(txn.record)
    sb.inject_fault("502", path_prefix=TOKEN_PATH)
    token_posts(sb, 1)  # the seeding refresh is logged
    sb.clear_log()
    authenticator = WhoopAuthenticator(config)
    assert authenticator.access_token() == record.access_token
    assert "was not resent" in logs.text
    # No second attempt in this run, although the token is inside the refresh margin ...
    assert authenticator.access_token() == record.access_token
    assert len(token_posts(sb, 1)) == 1
    # ... and once that token is refused too, the run stops with the explanation instead of resending.
    authenticator.handle_unauthorized(record.access_token)
    with pytest.raises(WhoopAuthError, match="not sent again"):
        authenticator.access_token()
    assert len(token_posts(sb, 1)) == 1


def test_connection_refused_is_retried_because_nothing_was_sent(config, monkeypatch):
    attempts = []
    real_post = api._post_token_request

    def counting(*args, **kwargs):
        attempts.append(1)
        return real_post(*args, **kwargs)

    monkeypatch.setattr(api, "_post_token_request", counting)
    closed = {**config, "token_url": "http://127.0.0.1:9/oauth/oauth2/token"}  # discard port: refused
    with pytest.raises(WhoopAuthError, match="nothing was sent") as err:
        WhoopAuthenticator(closed).access_token()
    assert len(attempts) == WhoopClient.policy.tries
    assert_no_secrets(str(err.value), config["refresh_token"])
    record = stored(config)
    assert record is not None
    assert record.refresh_started_at is None  # intent withdrawn: the token certainly was not spent


def test_losing_a_refresh_race_uses_the_winners_tokens(sb, config, tmp_path, monkeypatch):
    """A run whose lease was taken over gets invalid_grant; it re-reads the store instead of failing."""
    db_config = {**config, "token_store": f"sqlite:///{tmp_path / 'tokens.sqlite'}"}
    WhoopAuthenticator(db_config).access_token()
    expire_stored_access_token(db_config)
    store = open_token_store(db_config["token_store"])
    real_post = api._post_token_request

    def other_run_wins(token_url, form, timeout):
        body = real_post(token_url, form, timeout)  # the winner spends the token and saves its successor
        with store.engine.begin() as conn:
            row = conn.execute(sa.select(store.table)).one()
            payload = json.loads(row.payload)
            payload.update(
                refresh_token=body["refresh_token"],
                access_token=body["access_token"],
                access_expires_at=time.time() + 3600,
            )
            conn.execute(sa.update(store.table).values(payload=json.dumps(payload), version=row.version + 1))
        raise TokenRequestRejected("invalid_grant", 400)  # ... and our request came second

    monkeypatch.setattr(api, "_post_token_request", other_run_wins)
    authenticator = WhoopAuthenticator(db_config)
    token = authenticator.access_token()
    assert token == stored(db_config).access_token
    monkeypatch.undo()
    assert get_profile(sb, authenticator).status_code == 200


def test_sql_store_end_to_end(sb, config, tmp_path):
    db_config = {**config, "token_store": f"sqlite:///{tmp_path / 'tokens.sqlite'}"}
    assert get_profile(sb, WhoopAuthenticator(db_config)).status_code == 200
    assert get_profile(sb, WhoopAuthenticator(db_config)).status_code == 200
    assert len(token_posts(sb, 1)) == 1
    assert not (tmp_path / "tokens.json").exists()
    assert json.dumps(sb.request_log).count("sbx-rt-") == 0  # the sandbox log redacts the form too


def test_a_full_tap_run_keeps_tokens_out_of_messages_state_and_logs(sb, config, caplog):
    from .conftest import run_tap

    caplog.set_level(logging.DEBUG)
    result = run_tap({**config, "api_url": sb.api_url, "start_date": "2020-01-01T00:00:00Z"})
    assert result.error is None, result.error
    assert result.records["profile"]
    [record] = open_token_store(config["token_store"]).records(config["client_id"]).values()
    everything = json.dumps(result.messages) + caplog.text
    assert "Refreshed the WHOOP access token" in caplog.text  # the logs were captured
    assert_no_secrets(everything, config["refresh_token"], record.refresh_token, record.access_token)
    assert sb.client_secret not in everything
    assert len(token_posts(sb, 1)) == 1  # one refresh for the whole run, shared by every stream
