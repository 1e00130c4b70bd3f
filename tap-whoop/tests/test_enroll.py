"""Enrollment through `tap-whoop serve`: invites, WHOOP's consent, the callback, every way it can fail."""

from __future__ import annotations

import datetime as dt
import json
import logging
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient
from tap_whoop.athletes import invites
from tap_whoop.cli import commands
from tap_whoop.service import enroll
from tap_whoop.service.app import create_app
from tap_whoop.stores import open_token_store

# Time arithmetic: the date lane (make test-dates) runs this module at every date it tries.
pytestmark = pytest.mark.clock

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


def consent(client: TestClient, invite_path: str, public: str = PUBLIC) -> str:
    """The browser's way from the invite to WHOOP's redirect back: the /callback path with its query."""
    connect = client.get(invite_path, follow_redirects=False)
    assert connect.status_code == 302, connect.text
    answer = requests.get(connect.headers["location"], allow_redirects=False, timeout=10)
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{public}/callback"
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


def test_a_public_url_with_a_path_enrolls_behind_a_proxy(sandbox, config):
    config = {**config, "public_url": f"{PUBLIC}/whoop"}
    # A proxy serving the service under /whoop: the browser sees /whoop/..., the service its own paths.
    proxy = Starlette(routes=[Mount("/whoop", app=create_app(config))])
    with TestClient(proxy) as browser:  # its cookie jar honours each cookie's path, as a browser's does
        connect = browser.get(invite(config), follow_redirects=False)
        assert "Path=/whoop/callback" in connect.headers["set-cookie"]
        answer = requests.get(connect.headers["location"], allow_redirects=False, timeout=10)
        callback = urlsplit(answer.headers["Location"])
        page = browser.get(f"{callback.path}?{callback.query}")
    assert page.status_code == 200, page.text
    assert "Connected" in page.text
    assert len(athletes_in(config)) == 1


def test_a_sign_in_outlives_a_flood_of_connects_and_a_restart(sandbox, config):
    with TestClient(create_app(config)) as athlete:
        callback = consent(athlete, invite(config))
    # Nothing of a sign-in in progress lives in the service: neither a flood of /connect (from anyone with
    # an invite) nor a restart of the process can make it forget one.
    app = create_app(config)
    with TestClient(app) as flooder, TestClient(app, cookies=athlete.cookies) as restarted:
        flood = invite(config)
        assert all(flooder.get(flood, follow_redirects=False).status_code == 302 for _ in range(200))
        page = restarted.get(callback)
    assert page.status_code == 200, page.text
    assert "Connected" in page.text
    assert len(athletes_in(config)) == 1


def test_a_callback_without_the_cookie_spends_nothing(sandbox, config):
    app = create_app(config)
    with TestClient(app) as athlete, TestClient(app) as attacker:
        callback = consent(athlete, invite(config))
        stolen = attacker.get(callback)  # the athlete's own callback URL, seen elsewhere
        assert stolen.status_code == 400
        assert "another browser" in stolen.text
        page = athlete.get(callback)
    assert page.status_code == 200, page.text
    assert "Connected" in page.text


def test_a_sign_in_expires_after_ten_minutes(sandbox, config, monkeypatch):
    import itsdangerous.timed

    with TestClient(create_app(config)) as client:
        callback = consent(client, invite(config))
        real = itsdangerous.timed.time.time
        monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: real() + enroll.STATE_TTL_SECONDS + 5)
        page = client.get(callback)
    assert page.status_code == 400
    assert "already used or has expired" in page.text
    assert athletes_in(config) == {}


def test_without_service_secret_athletes_see_a_plain_page_and_the_operator_a_warning(config, caplog):
    caplog.set_level(logging.WARNING, logger="tap-whoop")
    token = parse_qs(urlsplit(invite(config)).query)["invite"][0]
    unset = {k: v for k, v in config.items() if k != "service_secret"}
    with TestClient(create_app(unset)) as client:
        started = [r.getMessage() for r in caplog.records]
        pages = [client.get("/connect", params={"invite": token}), client.get("/callback?state=x&code=y")]
    assert any(line.startswith("Enrollment is off: service_secret is not set") for line in started)
    for page in pages:
        assert page.status_code == 503
        assert "Sign-up unavailable" in page.text
        for hint in ("service_secret", "secrets", "python", "public_url"):  # the operator's fix, not theirs
            assert hint not in page.text


def test_what_whoop_sends_back_cannot_forge_a_log_line(sandbox, config, caplog):
    caplog.set_level(logging.INFO, logger="tap-whoop")
    sandbox.set_consent("deny")
    with TestClient(create_app(config)) as client:
        callback = urlsplit(consent(client, invite(config)))
        query = {**parse_qs(callback.query), "error": ["x\nEnrollment: athlete 1 enrolled"]}
        page = client.get(f"{callback.path}?{urlencode(query, doseq=True)}")
    assert page.status_code == 200
    answered = [r.getMessage() for r in caplog.records if "WHOOP answered" in r.getMessage()]
    assert answered == ["Enrollment: WHOOP answered x\\nEnrollment: athlete 1 enrolled"]
