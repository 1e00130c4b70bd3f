"""`tap-whoop auth` end to end against the sandbox (loopback callback and pasted redirect) and its errors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from urllib.parse import parse_qs, urlsplit

import click
import pytest
import requests
from click.testing import CliRunner
from tap_whoop.auth.authenticator import WhoopAuthenticator
from tap_whoop.auth.authorize import authorize_url, code_from_redirect
from tap_whoop.cli import auth, load_config
from tap_whoop.stores import open_token_store
from tap_whoop.whoop import SCOPES

from .conftest import PATHS

TOKEN_PATH = "/oauth/oauth2/token"


@pytest.fixture
def sb(whoop_sandbox_factory):
    return whoop_sandbox_factory(days=2, athletes=1, rate_limits=[])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def settings(sb, tmp_path, redirect_uri: str) -> dict:
    return {
        "client_id": sb.client_id,
        "client_secret": sb.client_secret,
        "token_url": sb.token_url,
        "auth_url": sb.auth_url,
        "api_url": sb.api_url,
        "redirect_uri": redirect_uri,
        "token_store": str(tmp_path / "store" / "tokens.json"),
    }


def start_auth(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tap_whoop", "auth", *args],  # `tap-whoop auth`, through the tap's CLI
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def read_authorize_url(process: subprocess.Popen) -> str:
    for line in process.stdout:
        if line.strip().startswith("http"):
            return line.strip()
    raise AssertionError(f"no authorization URL printed: {process.stderr.read()[-800:]}")


def assert_authorized(sb, config: dict, output: str) -> None:
    assert "Tokens saved to" in output
    assert config["token_store"] in output
    assert "meltano run whoop-duckdb" in output
    assert "sbx-rt-" not in output
    assert "sbx-at-" not in output
    assert "sbx-code-" not in output
    user_id = sb.athletes[0].user_id
    assert f"Authorized athlete {user_id}" in output
    # Whoever consented is enrolled under their WHOOP user_id, with their name.
    records = open_token_store(config["token_store"]).records(config["client_id"])
    assert set(records) == {str(user_id)}
    record = records[str(user_id)]
    assert record.source == "auth"
    assert record.refresh_token
    assert record.status == "ok"
    assert record.first_name == sb.athletes[0].profile["first_name"]
    # The tap picks the tokens up: its first run spends no refresh token at all.
    deadline = time.monotonic() + 5  # the sandbox logs the code exchange just after answering it
    while not any(r["path"] == TOKEN_PATH for r in sb.request_log) and time.monotonic() < deadline:
        time.sleep(0.02)
    sb.clear_log()
    authenticator = WhoopAuthenticator(config, athlete=str(user_id))
    assert requests.get(sb.api_url + PATHS["profile"], auth=authenticator, timeout=10).status_code == 200
    assert [r for r in sb.request_log if r["path"] == TOKEN_PATH] == []


def test_authorize_url_has_every_scope_and_a_strong_state():
    url = authorize_url(
        "https://example.test/oauth/oauth2/auth", "client", "http://localhost:8080/callback", "s" * 32
    )
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query == {
        "client_id": "client",
        "redirect_uri": "http://localhost:8080/callback",
        "response_type": "code",
        "scope": "offline read:recovery read:cycles read:workout read:sleep read:profile "
        "read:body_measurement",
        "state": "s" * 32,
    }
    assert SCOPES.split()[0] == "offline"


@pytest.mark.slow
def test_loopback_flow_end_to_end(sb, tmp_path):
    config = settings(sb, tmp_path, f"http://127.0.0.1:{free_port()}/callback")
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    process = start_auth("--config", str(config_file), "--no-browser", "--timeout", "60")
    url = read_authorize_url(process)
    # The "browser": the sandbox consents at once and redirects to the tap's callback server.
    landing = requests.get(url, timeout=30)
    assert landing.status_code == 200
    assert "close this window" in landing.text
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err[-800:]
    authorize = next(r for r in sb.request_log if r["path"] == "/oauth/oauth2/auth")
    state = authorize["params"]["state"]
    assert len(state) >= 8
    assert authorize["params"]["scope"] == SCOPES
    assert state not in out  # it appears in the URL only
    assert_authorized(sb, config, out)


@pytest.mark.slow
def test_paste_flow_with_meltano_style_environment(sb, tmp_path):
    config = settings(sb, tmp_path, "https://my-app.example.test/whoop/callback")  # not loopback: paste
    env = {f"TAP_WHOOP_{key.upper()}": value for key, value in config.items()}
    process = start_auth("--paste", env=env)
    url = read_authorize_url(process)
    redirect = requests.get(url, allow_redirects=False, timeout=30).headers["Location"]
    assert redirect.startswith(config["redirect_uri"] + "?")
    out, err = process.communicate(redirect + "\n", timeout=60)
    assert process.returncode == 0, err[-800:]
    assert_authorized(sb, config, out)


def test_bad_state_is_refused_and_nothing_is_saved(sb, tmp_path):
    config = settings(sb, tmp_path, "http://127.0.0.1:9/callback")
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    # A real code from WHOOP, but for another authorization attempt (its state is not this run's).
    forged = requests.get(
        authorize_url(sb.auth_url, sb.client_id, config["redirect_uri"], "someone-elses-state"),
        allow_redirects=False,
        timeout=30,
    ).headers["Location"]
    result = CliRunner().invoke(auth, ["--config", str(config_file), "--paste"], input=forged + "\n")
    assert result.exit_code == 1
    assert "state" in result.output
    assert "does not match" in result.output
    assert not (tmp_path / "store" / "tokens.json").exists()
    assert [r for r in sb.request_log if r["path"] == TOKEN_PATH] == []  # the code was never exchanged


def test_redirect_errors_and_usage_errors(tmp_path, monkeypatch):
    with pytest.raises(Exception, match="access_denied"):
        code_from_redirect("http://localhost:8080/callback?state=abcdefgh&error=access_denied", "abcdefgh")
    with pytest.raises(Exception, match="no authorization code"):
        code_from_redirect("http://localhost:8080/callback?state=abcdefgh", "abcdefgh")

    for name in ("CLIENT_ID", "CLIENT_SECRET"):
        monkeypatch.delenv(f"TAP_WHOOP_{name}", raising=False)
    result = CliRunner().invoke(auth, ["--no-browser"])
    assert result.exit_code == 2
    assert "TAP_WHOOP_CLIENT_ID" in result.output

    config_file = tmp_path / "config.json"
    config_file.write_text(
        json.dumps({"client_id": "c", "client_secret": "s", "redirect_uri": "https://x.test/cb"})
    )
    result = CliRunner().invoke(auth, ["--config", str(config_file), "--no-browser"])
    assert result.exit_code == 2
    assert "--paste" in result.output


def test_config_files_win_and_environment_fills_gaps(tmp_path):
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps({"client_id": "from-file", "token_store": ""}))
    config = load_config(
        (str(config_file),),
        {
            "TAP_WHOOP_CLIENT_ID": "from-env",
            "TAP_WHOOP_CLIENT_SECRET": "env-secret",
            "TAP_WHOOP_TOKEN_STORE": "x",
        },
    )
    assert config == {"client_id": "from-file", "client_secret": "env-secret", "token_store": "x"}


def test_environment_values_take_the_settings_types():
    """TAP_WHOOP_* text becomes the setting's type, as the tap itself reads it (the service and auth too)."""
    config = load_config((), {"TAP_WHOOP_LOOKBACK_DAYS": "30", "TAP_WHOOP_RECONCILE_DELETIONS": "False"})
    assert config == {"lookback_days": 30, "reconcile_deletions": False}
    with pytest.raises(click.UsageError, match="TAP_WHOOP_LOOKBACK_DAYS must be a whole number"):
        load_config((), {"TAP_WHOOP_LOOKBACK_DAYS": "two weeks"})
    with pytest.raises(click.UsageError, match="TAP_WHOOP_RECONCILE_DELETIONS must be true or false"):
        load_config((), {"TAP_WHOOP_RECONCILE_DELETIONS": "maybe"})
