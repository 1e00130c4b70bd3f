"""Failures a user can fix end the console script in one line naming the cause and the fix, with exit 1 (2 for
usage errors) and no traceback: settings, token store, network and WHOOP's refusals, for a run, `--test`,
`--discover`, `auth` and `serve`."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from tap_whoop import cli
from tap_whoop.auth import authorize
from tap_whoop.client.api import WhoopClient

TAP = str(Path(sys.executable).with_name("tap-whoop"))
pytestmark = pytest.mark.slow  # console scripts


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def last_line(result: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert lines, "nothing on stderr"
    return lines[-1]


def tap(tmp_path: Path, config: dict | None, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    command = [TAP]
    if config is not None:
        path = tmp_path / f"config-{len(list(tmp_path.glob('config-*')))}.json"
        path.write_text(json.dumps(config))
        command += ["--config", str(path)]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=120, input=stdin, check=False
    )


@pytest.fixture
def sandbox(whoop_sandbox_factory):
    return whoop_sandbox_factory(seed=1, days=3, athletes=1, rate_limits=[])


@pytest.fixture
def blocker(tmp_path) -> Path:
    """A regular file where the token store wants a directory."""
    path = tmp_path / "blocker"
    path.write_text("not a directory\n")
    return path


# ------------------------------------------------------------------ the token store


@pytest.mark.parametrize("mode", [[], ["--test"]], ids=["run", "test"])
def test_a_token_store_in_a_directory_that_cannot_exist(tmp_path, config, blocker, mode):
    result = tap(tmp_path, {**config, "token_store": str(blocker / "state" / "tokens.json")}, *mode)
    assert result.returncode == 1
    line = last_line(result)
    assert line.startswith("Error: ")
    assert f"token store {blocker}/state/tokens.json" in line
    assert "Not a directory" in line
    assert "set token_store to a location you can write to" in line


def test_a_sql_token_store_whose_directory_cannot_be_created(tmp_path, config, blocker):
    result = tap(tmp_path, {**config, "token_store": f"sqlite:///{blocker}/state/tokens.db"})
    assert result.returncode == 1
    line = last_line(result)
    assert line.startswith(f"Error: Cannot create the directory {blocker}/state for the token store: ")
    assert line.endswith("Set token_store to a location in a directory you can write to.")


def test_a_token_store_url_without_its_driver(tmp_path, config):
    result = tap(tmp_path, {**config, "token_store": "mssql+pymssql://user@127.0.0.1:1/db"})
    assert result.returncode == 1
    line = last_line(result)
    assert line.startswith("Error: No SQLAlchemy driver for the token store mssql+pymssql://")


# ------------------------------------------------------------------ the network


def run_main(monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], *argv: str) -> str:
    """`tap-whoop ARGV` in-process (the suite's retries take milliseconds, not a minute), through the console
    script's entry point: the last line on stderr, after a non-zero exit without a traceback."""
    monkeypatch.setattr(sys, "argv", ["tap-whoop", *argv])
    loggers = [
        logging.root,
        *(lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger)),
    ]
    before = {id(lg): list(lg.handlers) for lg in loggers}
    try:
        with pytest.raises(SystemExit) as exited:
            cli.main()
    finally:
        # The run configures logging to this test's captured stderr: the next run must not write there.
        for lg in [logging.root, *logging.root.manager.loggerDict.values()]:
            if isinstance(lg, logging.Logger):
                lg.handlers[:] = before.get(id(lg), [])
    assert exited.value.code == 1
    stderr = capfd.readouterr().err
    assert "Traceback" not in stderr
    return stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("mode", [[], ["--test"]], ids=["run", "test"])
def test_an_unreachable_token_endpoint(tmp_path, config, mode, monkeypatch, capfd):
    token_url = f"http://127.0.0.1:{closed_port()}/oauth/oauth2/token"
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**config, "token_url": token_url}))
    line = run_main(monkeypatch, capfd, "--config", str(path), *mode)
    assert f"Could not reach WHOOP's token endpoint {token_url}" in line
    assert line.endswith("Try again later.")
    if mode:
        assert line.startswith(f"Error: WHOOP credentials do not work against {config['api_url']}: ")


def test_an_unreachable_api(config, monkeypatch, capfd):
    api_url = f"http://127.0.0.1:{closed_port()}/developer"
    path = Path(config["token_store"]).with_name("config.json")
    path.write_text(json.dumps({**config, "api_url": api_url}))
    line = run_main(monkeypatch, capfd, "--config", str(path))
    # The first call learns whose the refresh_token setting is (the athlete's adoption).
    assert line.startswith("Error: No athlete to sync: GET " + api_url)
    assert f"gave up after {WhoopClient.policy.tries} tries: ConnectionError" in line
    assert "Check api_url and the network; the state saved so far stays valid: run again later." in line


# ------------------------------------------------------------------ WHOOP's refusals


def test_whoop_refuses_the_app_credentials(tmp_path, config):
    result = tap(tmp_path, {**config, "client_secret": "not-the-secret"}, "--test")
    assert result.returncode == 1
    line = last_line(result)
    assert "WHOOP rejected the app credentials (invalid_client" in line
    assert "check client_id and client_secret" in line
    assert "not-the-secret" not in result.stderr + result.stdout


@pytest.mark.smoke
def test_whoop_refuses_a_spent_refresh_token(tmp_path, config):
    result = tap(tmp_path, {**config, "refresh_token": "sbx-rt-spent"})
    assert result.returncode == 1
    line = last_line(result)
    assert "WHOOP rejected the refresh_token setting (invalid_grant)" in line
    assert line.endswith(
        "The athlete must consent again: `tap-whoop auth`, or a link from `tap-whoop athletes invite`."
    )
    assert "sbx-rt-spent" not in result.stderr + result.stdout


def test_whoop_refuses_a_request_for_good(tmp_path, sandbox, config):
    sandbox.inject_fault("next_token_loop", path_prefix="/developer/v2/cycle")
    result = tap(tmp_path, config)
    assert result.returncode == 1
    line = last_line(result)
    assert "pagination loop" in line
    assert line.endswith("the state saved so far stays valid: run again later.")


# ------------------------------------------------------------------ settings and files


@pytest.mark.parametrize(
    ("overrides", "cause"),
    [
        ({"client_id": None}, "'client_id' is a required property"),
        ({"start_date": "yesterday"}, "start_date must be an ISO 8601 date-time"),
    ],
    ids=["missing", "invalid"],
)
@pytest.mark.parametrize("mode", [[], ["--test"]], ids=["run", "test"])
def test_invalid_settings(tmp_path, config, overrides, cause, mode):
    settings = {k: v for k, v in {**config, **overrides}.items() if v is not None}
    result = tap(tmp_path, settings, *mode)
    assert result.returncode == 1
    line = last_line(result)
    assert line.startswith(f"Error: Invalid settings: {cause}")
    assert line.endswith("(`tap-whoop --about` lists every setting).")


@pytest.mark.parametrize("mode", [[], ["--test"], ["--discover"]], ids=["run", "test", "discover"])
def test_a_config_file_that_is_missing_or_not_json(tmp_path, mode):
    missing = tap(tmp_path, None, "--config", str(tmp_path / "nowhere.json"), *mode)
    assert missing.returncode == 1
    assert last_line(missing) == (
        f"Error: Cannot read --config {tmp_path / 'nowhere.json'}: No such file or directory. "
        "Pass the path of a JSON file."
    )
    broken = tmp_path / "broken.json"
    broken.write_text('{"client_id": ')
    result = tap(tmp_path, None, "--config", str(broken), *mode)
    assert result.returncode == 1
    assert last_line(result).startswith(f"Error: --config {broken} is not valid JSON (")


def test_a_state_file_that_is_not_json(tmp_path, config):
    state = tmp_path / "state.json"
    state.write_text("not json")
    result = tap(tmp_path, config, "--state", str(state))
    assert result.returncode == 1
    assert last_line(result).startswith(f"Error: --state {state} is not valid JSON (")


def test_discovery_needs_no_working_credentials_or_store(tmp_path, config, blocker):
    """Nothing a run would need is touched: a broken store or endpoint cannot fail discovery."""
    bad = {**config, "token_store": str(blocker / "tokens.json"), "token_url": "http://127.0.0.1:9/t"}
    result = tap(tmp_path, bad, "--discover")
    assert result.returncode == 0, result.stderr[-2000:]
    assert {s["tap_stream_id"] for s in json.loads(result.stdout)["streams"]} >= {"cycles", "workouts"}


# ------------------------------------------------------------------ the commands


def pasted_redirect(process: subprocess.Popen) -> str:
    """Follow the printed authorization link the way a browser would; the URL it was redirected to."""
    for line in process.stdout:
        if line.strip().startswith("http"):
            return requests.get(line.strip(), allow_redirects=False, timeout=30).headers["Location"]
    raise AssertionError(f"no authorization URL printed: {process.stderr.read()[-800:]}")


def auth(tmp_path: Path, config: dict) -> subprocess.CompletedProcess:
    path = tmp_path / "auth-config.json"
    path.write_text(json.dumps({**config, "redirect_uri": "https://app.example.test/whoop/callback"}))
    process = subprocess.Popen(
        [TAP, "auth", "--config", str(path), "--paste"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    redirect = pasted_redirect(process)
    out, err = process.communicate(redirect + "\n", timeout=60)
    # The paste prompt ends without a newline (the user's Enter supplies it): the answer starts a line.
    err = err.replace("/callback): ", "/callback):\n")
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_auth_with_an_unreachable_token_endpoint(tmp_path, config, monkeypatch, capfd):
    token_url = f"http://127.0.0.1:{closed_port()}/oauth/oauth2/token"
    path = tmp_path / "auth-config.json"
    redirect_uri = "https://app.example.test/whoop/callback"
    path.write_text(json.dumps({**config, "token_url": token_url, "redirect_uri": redirect_uri}))

    def paste(text: str, **kwargs: object) -> str:
        link = next(line for line in capfd.readouterr().out.split() if line.startswith("http"))
        return requests.get(link, allow_redirects=False, timeout=30).headers["Location"]

    monkeypatch.setattr(authorize.click, "prompt", paste)
    line = run_main(monkeypatch, capfd, "auth", "--config", str(path), "--paste")
    assert line.startswith("Error: The code exchange failed (")
    assert line.endswith("run `tap-whoop auth` again.")


def test_auth_with_a_token_store_that_cannot_be_written(tmp_path, config, blocker):
    result = auth(tmp_path, {**config, "token_store": str(blocker / "state" / "tokens.json")})
    assert result.returncode == 1
    line = last_line(result)
    assert line.startswith("Error: ")
    assert f"{blocker}/state" in line
    assert "token_store" in line


def test_serve_on_a_port_in_use(tmp_path, config):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        path = tmp_path / "serve-config.json"
        path.write_text(json.dumps(config))
        result = subprocess.run(
            [TAP, "serve", "--config", str(path), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert last_line(result) == (
        f"Error: Cannot listen on 127.0.0.1:{port}: Address already in use. Stop what is using it, or pass "
        "another --port (or --host)."
    )


@pytest.mark.parametrize(
    "store", ["state/tokens.json", "sqlite:///{blocker}/state/tokens.db"], ids=["file", "sql"]
)
def test_serve_with_an_event_log_that_cannot_be_written(tmp_path, config, blocker, store):
    # Refused at start: a service that came up would answer every WHOOP delivery with a 500.
    token_store = store.format(blocker=blocker) if "://" in store else str(blocker / store)
    path = tmp_path / "serve-config.json"
    path.write_text(json.dumps({**config, "token_store": token_store}))
    result = subprocess.run(
        [TAP, "serve", "--config", str(path), "--port", str(closed_port())],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    line = last_line(result)
    assert line.startswith(f"Error: Cannot create the directory {blocker}/state for the webhook event log: ")
    assert line.endswith("Set token_store to a location in a directory you can write to.")
