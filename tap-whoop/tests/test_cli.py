"""The console script and settings: `--test`, `--about`, the `auth` dispatch and clear config errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from singer_sdk.exceptions import ConfigValidationError
from tap_whoop.tap import TapWhoop

TAP = str(Path(sys.executable).with_name("tap-whoop"))
SETTINGS = (
    "client_id",
    "client_secret",
    "refresh_token",
    "start_date",
    "end_date",
    "lookback_days",
    "api_url",
    "token_url",
    "auth_url",
    "redirect_uri",
    "token_store",
)


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([TAP, *args], capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.slow
@pytest.mark.smoke
def test_test_flag_says_in_one_line_whether_credentials_work(whoop_sandbox_factory, make_config, tmp_path):
    sandbox = whoop_sandbox_factory(seed=1, days=5, athletes=1, rate_limits=[])
    good = tmp_path / "good.json"
    good.write_text(json.dumps(make_config(sandbox)))
    ok = _run("--config", str(good), "--test")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines() == [
        f"OK: WHOOP credentials work (user {sandbox.athletes[0].user_id}, {sandbox.api_url})."
    ]

    bad = tmp_path / "bad.json"
    store = str(tmp_path / "other-tokens.json")
    bad.write_text(json.dumps({**make_config(sandbox), "client_secret": "wrong", "token_store": store}))
    failed = _run("--config", str(bad), "--test")
    assert failed.returncode == 1
    assert failed.stdout == ""
    line = failed.stderr.splitlines()[-1]
    assert line.startswith("Error: WHOOP credentials do not work")
    assert "wrong" not in failed.stderr


@pytest.mark.slow
def test_about_lists_every_setting_and_marks_secrets():
    about = _run("--about", "--format=json")
    assert about.returncode == 0
    settings = json.loads(about.stdout)["settings"]["properties"]
    assert set(SETTINGS) <= set(settings)
    for secret in ("client_id", "client_secret", "refresh_token"):
        assert settings[secret].get("secret") is True
    assert settings["lookback_days"]["default"] == 14
    markdown = _run("--about", "--format=markdown").stdout
    assert all(f"| {name} |" in markdown for name in SETTINGS)


@pytest.mark.slow
def test_auth_subcommand_dispatches_to_the_authorization_flow():
    result = _run("auth", "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: tap-whoop auth" in result.stdout
    tap_help = _run("--help")
    assert tap_help.returncode == 0
    assert "--discover" in tap_help.stdout


@pytest.mark.slow
def test_auth_after_leading_config_reads_that_config(tmp_path):
    # `meltano invoke tap-whoop auth` runs `tap-whoop --config FILE auth`: the config must reach the command.
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"client_id": "fake-client"}))
    result = _run("--config", str(config), "auth", "--paste")
    assert result.returncode == 2
    assert "Usage: tap-whoop auth" in result.stderr
    # client_id came from the config file, so only the secret is reported missing.
    assert "Missing client_secret:" in result.stderr


BASE = {"client_id": "fake-client", "client_secret": "fake-secret"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"client_id": None}, "client_id"),
        ({"start_date": "last tuesday"}, "start_date must be an ISO 8601 date-time"),
        ({"start_date": "2024-02-01T00:00:00Z", "end_date": "2024-01-01T00:00:00Z"}, "end_date must be"),
        ({"lookback_days": -1}, "lookback_days"),
        ({"api_url": "api.prod.whoop.com"}, "api_url must be an absolute http(s) URL"),
        ({"token_url": "ftp://example.invalid/token"}, "token_url must be an absolute http(s) URL"),
    ],
)
def test_bad_settings_fail_with_a_clear_message(overrides, message):
    config = {k: v for k, v in {**BASE, **overrides}.items() if v is not None}
    with pytest.raises(ConfigValidationError) as info:
        TapWhoop(config=config, parse_env_config=False)
    assert message in " ".join(info.value.errors)


def test_defaults_are_applied():
    tap = TapWhoop(config=dict(BASE), parse_env_config=False)
    assert tap.config["api_url"] == "https://api.prod.whoop.com/developer"
    assert tap.config["token_url"] == "https://api.prod.whoop.com/oauth/oauth2/token"
    assert tap.config["redirect_uri"] == "http://localhost:8080/callback"
    assert tap.config["lookback_days"] == 14


@pytest.mark.slow
@pytest.mark.smoke
def test_sync_is_the_tap_itself():
    about = _run("sync", "--about", "--format=json")
    assert about.returncode == 0, about.stderr
    assert json.loads(about.stdout)["name"] == "tap-whoop"


@pytest.mark.slow
def test_commands_validate_settings_like_a_run(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**BASE, "lookback_days": -2}))
    result = _run("serve", "--config", str(config), "--port", "1")
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == "Error: lookback_days: -2 is less than the minimum of 0"
