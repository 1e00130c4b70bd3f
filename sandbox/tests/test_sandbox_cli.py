"""Point 9: the sandbox as a command (credentials file, SIGTERM) and as an in-process pytest fixture."""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import sys
import time

import pytest
import requests
from whoop_sandbox import Sandbox


def wait_for(path, process, seconds: float = 20):
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "sandbox did not write its credentials in time"
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.smoke
def test_command_serves_until_sigterm(tmp_path):
    credentials = tmp_path / "state" / "sandbox.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "whoop_sandbox",
            "--port",
            "0",
            "--days",
            "20",
            "--seed",
            "3",
            "--athletes",
            "2",
            "--rate-limits",
            "7/60",
            "--credentials-out",
            str(credentials),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(credentials, process)
        assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
        creds = json.loads(credentials.read_text())
        assert set(creds) == {
            "api_url",
            "token_url",
            "auth_url",
            "client_id",
            "client_secret",
            "refresh_token",
        }
        assert creds["api_url"].startswith("http://127.0.0.1:")
        tokens = requests.post(
            creds["token_url"],
            data={
                "grant_type": "refresh_token",
                "refresh_token": creds["refresh_token"],
                "client_id": creds["client_id"],
                "client_secret": creds["client_secret"],
            },
            timeout=10,
        ).json()
        response = requests.get(
            creds["api_url"] + "/v2/cycle",
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
            timeout=10,
        )
        assert response.status_code == 200
        assert response.headers["X-RateLimit-Limit"] == "7, 7;window=60"
        base = creds["api_url"].removesuffix("/developer")
        info = requests.get(base + "/_sandbox/info", timeout=10).json()
        assert len(info["athletes"]) == 2
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert base in out
    assert str(credentials) in out
    # Secrets go to the 0600 file only, never to the console.
    assert creds["client_secret"] not in out + err
    assert creds["refresh_token"] not in out + err
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(base + "/_sandbox/info", timeout=2)


def test_command_refuses_non_loopback_hosts_and_bad_options():
    refused = subprocess.run(
        [sys.executable, "-m", "whoop_sandbox", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert refused.returncode == 2
    assert "loopback" in refused.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "whoop_sandbox", "--rate-limits", "lots"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com"])
def test_python_api_refuses_non_loopback_hosts(host):
    with pytest.raises(ValueError, match="loopback"):
        Sandbox(days=1, athletes=1).start(host=host)


def test_context_manager_starts_and_stops():
    with Sandbox(days=2, athletes=1) as sandbox:
        url = sandbox.base_url
        assert requests.get(url + "/_sandbox/info", timeout=5).status_code == 200
        assert sandbox.api_url == url + "/developer"
        assert sandbox.token_url == url + "/oauth/oauth2/token"
        assert sandbox.auth_url == url + "/oauth/oauth2/auth"
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url + "/_sandbox/info", timeout=2)


def test_pytest_plugin_is_registered_and_fixtures_are_started(
    pytestconfig, whoop_sandbox, whoop_sandbox_factory
):
    assert pytestconfig.pluginmanager.has_plugin("whoop_sandbox")
    assert len(whoop_sandbox.athletes) == 2
    assert requests.get(whoop_sandbox.base_url + "/_sandbox/info", timeout=5).status_code == 200
    custom = whoop_sandbox_factory(days=3, athletes=1, access_token_ttl=5)
    assert custom.oauth.access_token_ttl == 5
    assert len(custom.athletes) == 1
    assert custom.base_url != whoop_sandbox.base_url
