"""Enrollment through `tap-whoop serve`: invites, WHOOP's consent, the callback, every way it can fail."""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from click.testing import CliRunner
from starlette.testclient import TestClient
from tap_whoop import invites
from tap_whoop.cli import commands
from tap_whoop.service.app import create_app
from tap_whoop.stores import open_token_store

SECRET = "s" * 40
PUBLIC = "http://testserver"  # TestClient's own origin


@pytest.fixture
def sandbox(whoop_sandbox_factory):
    return whoop_sandbox_factory(seed=41, days=3, athletes=3, rate_limits=[])


@pytest.fixture
def config(sandbox, tmp_path):
    return {
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
        "api_url": sandbox.api_url,
        "token_url": sandbox.token_url,
        "auth_url": sandbox.auth_url,
        "token_store": str(tmp_path / "tokens.json"),
        "service_secret": SECRET,
        "public_url": PUBLIC,
    }


def invite(config, valid_for=dt.timedelta(days=7)) -> str:
    url, _ = invites.make_invite(config, valid_for)
    return urlsplit(url).path + "?" + urlsplit(url).query


def consent(client: TestClient, invite_path: str) -> str:
    """The browser's way from the invite to WHOOP's redirect back: the /callback path with its query."""
    connect = client.get(invite_path, follow_redirects=False)
    assert connect.status_code == 302, connect.text
    answer = requests.get(connect.headers["location"], allow_redirects=False, timeout=10)
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}" == PUBLIC
    return f"{location.path}?{location.query}"


def athletes_in(config) -> dict:
    return open_token_store(config["token_store"]).records(config["client_id"])


def test_an_invited_athlete_connects_and_is_enrolled(sandbox, config):
    sandbox.consent_athlete = 2
    with TestClient(create_app(config)) as client:
        connect = client.get(invite(config), follow_redirects=False)
        query = parse_qs(urlsplit(connect.headers["location"]).query)
        assert query["redirect_uri"] == [f"{PUBLIC}/callback"]
        assert len(query["state"][0]) >= 32
        cookie = connect.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie
        assert "Path=/callback" in cookie
        answer = requests.get(connect.headers["location"], allow_redirects=False, timeout=10)
        callback = urlsplit(answer.headers["Location"])
        page = client.get(f"{callback.path}?{callback.query}")
    assert page.status_code == 200
    assert "Connected" in page.text
    assert sandbox.athletes[2].profile["first_name"] in page.text
    for secret in ("sbx-", SECRET, config["client_secret"]):
        assert secret not in page.text
    user_id = sandbox.athletes[2].user_id
    assert set(athletes_in(config)) == {str(user_id)}
    assert athletes_in(config)[str(user_id)].source == "enroll"


def test_a_replayed_state_is_refused(sandbox, config):
    with TestClient(create_app(config)) as client:
        callback = consent(client, invite(config))
        assert client.get(callback).status_code == 200
        again = client.get(callback)
    assert again.status_code == 400
    assert "already used or has expired" in again.text
    assert len(athletes_in(config)) == 1


def test_a_state_from_another_browser_is_refused(sandbox, config):
    app = create_app(config)
    with TestClient(app) as victim, TestClient(app) as attacker:
        callback = consent(
            attacker, invite(config)
        )  # the attacker's own sign-in, replayed in the victim's browser
        page = victim.get(callback)
    assert page.status_code == 400
    assert "another browser" in page.text
    assert athletes_in(config) == {}


@pytest.mark.parametrize(
    ("mangle", "status", "text"),
    [
        (lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"), 403, "not valid"),
        (lambda token: "", 400, "invite link you were sent"),
    ],
    ids=["forged", "missing"],
)
def test_forged_and_missing_invites_are_refused(sandbox, config, mangle, status, text):
    token = parse_qs(urlsplit(invite(config)).query)["invite"][0]
    with TestClient(create_app(config)) as client:
        page = client.get("/connect", params={"invite": mangle(token)} if mangle(token) else {})
    assert page.status_code == status
    assert text in page.text
    assert "location" not in page.headers


def test_an_invite_signed_with_another_secret_or_for_another_app_is_refused(sandbox, config):
    other_secret = invite({**config, "service_secret": "x" * 40})
    other_app = invite({**config, "client_id": "another-app"})
    with TestClient(create_app(config)) as client:
        assert client.get(other_secret).status_code == 403
        assert client.get(other_app).status_code == 403


def test_an_expired_invite_is_refused(sandbox, config, monkeypatch):
    path = invite(config, dt.timedelta(minutes=30))
    real = invites.time.time
    monkeypatch.setattr(invites.time, "time", lambda: real() + 3600)
    with TestClient(create_app(config)) as client:
        page = client.get(path)
    assert page.status_code == 410
    assert "expired" in page.text


def test_consent_denied_ends_on_a_clear_page(sandbox, config):
    sandbox.set_consent("deny")
    with TestClient(create_app(config)) as client:
        page = client.get(consent(client, invite(config)))
    assert page.status_code == 200
    assert "You declined access" in page.text
    assert athletes_in(config) == {}


def test_athletes_invite_prints_a_signed_expiring_link(config, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    result = CliRunner().invoke(commands, ["athletes", "invite", "--config", str(path), "--expires", "2d"])
    assert result.exit_code == 0, result.output
    url = result.stdout.strip()
    assert url.startswith(f"{PUBLIC}/connect?invite=")
    expires = invites.check_invite(config, parse_qs(urlsplit(url).query)["invite"][0])
    assert dt.timedelta(days=1, hours=23) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(days=2)
    for bad, message in (("7x", "duration"), ("365d", "at most 90 days")):
        failed = CliRunner().invoke(commands, ["athletes", "invite", "--config", str(path), "--expires", bad])
        assert failed.exit_code == 2
        assert message in failed.output
    no_secret = tmp_path / "no-secret.json"
    no_secret.write_text(json.dumps({k: v for k, v in config.items() if k != "service_secret"}))
    failed = CliRunner().invoke(commands, ["athletes", "invite", "--config", str(no_secret)])
    assert failed.exit_code == 2
    assert "service_secret" in failed.output
