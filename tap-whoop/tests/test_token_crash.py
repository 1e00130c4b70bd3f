"""Crash safety and concurrency of token rotation, with real processes against the sandbox.

Each crash case runs a refresh in a child process that SIGKILLs itself at one named step (the no-op
`tap_whoop.crash_points.reach` is replaced in the child; "request_sent" kills after the token POST left the
process, before its response is read; "(intent)"/"(tokens)" tell the file store's write of the intent
record from the write of the new tokens), then starts a new run and checks the outcome in the matrix.
All cases run at once, forked from one process that imported the tap (one WHOOP app per case, so the
sandbox log tells them apart).

Unrecoverable by any client: WHOOP rotated the token and the process died before the successor reached
the store. There the next run must fail with the clear message (not a bare invalid_grant).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from tap_whoop.auth.authenticator import WhoopAuthenticator
from tap_whoop.errors import WhoopAuthError
from tap_whoop.stores import open_token_store
from tap_whoop.stores.tokens.record import TokenKey

from .conftest import PATHS

pytestmark = pytest.mark.slow

TOKEN_PATH = "/oauth/oauth2/token"

# Imports once, then forks one process per case: every case is a real process that can be SIGKILLed, without
# paying the SDK's import time per case on a small shared machine. The zygote has no threads, so fork is safe.
ZYGOTE = r"""
import http.client, json, logging, os, signal, sys, time, traceback
import requests
from tap_whoop import crash_points
from tap_whoop.auth.authenticator import WhoopAuthenticator
from tap_whoop.streams.endpoints import ProfileStream

kill_at, phase = "", "intent"  # store writes before WHOOP's answer save the intent, after it the tokens

def crash_at(step):
    global phase
    if step == "response_received":
        phase = "tokens"
    if kill_at in (step, f"{step}({phase})"):
        os.kill(os.getpid(), signal.SIGKILL)

crash_points.reach = crash_at
send_response = http.client.HTTPConnection.getresponse

def getresponse(self, *args, **kwargs):
    if self._method == "POST":  # the whole token request has been written to the socket
        crash_at("request_sent")
    return send_response(self, *args, **kwargs)

http.client.HTTPConnection.getresponse = getresponse

def run(case):
    global kill_at
    kill_at = case["kill_at"]
    output = os.open(case["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(output, 1)
    os.dup2(output, 2)
    time.sleep(max(0.0, case["start_at"] - time.time()))  # concurrent runs start together
    config = case["config"]
    authenticator = WhoopAuthenticator(config, logging.getLogger("tap-whoop"))
    response = requests.get(config["api_url"] + ProfileStream.path, auth=authenticator, timeout=30)
    print(json.dumps({"status": response.status_code}))

children = {}
for line in sys.stdin:
    case = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            run(case)
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    children[pid] = case["id"]
results = {}
for pid, case_id in children.items():
    _, status = os.waitpid(pid, 0)
    results[case_id] = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
print(json.dumps(results))
"""

# kill point -> token POSTs the next run makes (None: unrecoverable, the next run must explain)
FILE_MATRIX = {
    "locked": 1,
    "temp_written(intent)": 1,
    "replaced(intent)": 1,
    "intent_saved": 1,
    "request_sent": None,
    "response_received": None,
    "temp_written(tokens)": 0,  # the complete temp file is adopted by the next run
    "replaced(tokens)": 0,
    "saved": 0,
    "unlocked": 0,
}
SQL_MATRIX = {
    "locked": 1,  # the dead owner's lease is taken over at once
    "intent_saved": 1,
    "request_sent": None,
    "response_received": None,
    "saved": 0,
    "unlocked": 0,
}
DUCKDB_POINTS = ("locked", "response_received", "saved")  # same code path as SQLite; the file lock differs
CASES = (
    [("file", k, v) for k, v in FILE_MATRIX.items()]
    + [("sqlite", k, v) for k, v in SQL_MATRIX.items()]
    + [("duckdb", k, SQL_MATRIX[k]) for k in DUCKDB_POINTS]
    # A server: the compare-and-swap and the lease race over connections, not over a file's lock.
    + [("postgres", k, v) for k, v in SQL_MATRIX.items()]
)
CONCURRENT_STORES = ("file", "sqlite", "duckdb", "postgres")
CONCURRENT_RUNS = 3


@pytest.fixture(scope="module")
def sb():
    from whoop_sandbox import Sandbox

    with Sandbox(seed=7, days=2, athletes=1, rate_limits=[]) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def postgres_store(postgres_server) -> str:
    """One database for every PostgreSQL case: each case is an app of its own (its own client_id and row)."""
    return postgres_server.url(postgres_server.create_database(f"crash_{os.getpid()}"), driver="postgresql")


def store_url(kind: str, directory, postgres: str) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    return {
        "file": str(directory / "tokens.json"),
        "sqlite": f"sqlite:///{directory / 'tokens.sqlite'}",
        "duckdb": f"duckdb:///{directory / 'tokens.duckdb'}",
        "postgres": postgres,
    }[kind]


def run_processes(cases: dict[str, dict]) -> dict[str, tuple[int, str]]:
    """Run each case {config, kill_at, start_at, output} in its own process; (returncode, output) by id."""
    lines = "".join(
        json.dumps({"id": case_id, "start_at": 0.0, **case}) + "\n" for case_id, case in cases.items()
    )
    zygote = subprocess.run(
        [sys.executable, "-c", ZYGOTE], input=lines, capture_output=True, text=True, timeout=120, check=False
    )
    assert zygote.returncode == 0, zygote.stderr[-2000:]
    codes = json.loads(zygote.stdout.splitlines()[-1])
    return {case_id: (codes[case_id], Path(case["output"]).read_text()) for case_id, case in cases.items()}


def token_posts(sb, client_id: str, at_least: int = 0) -> int:
    """Token requests of one app; waits (briefly) for a killed client's request the sandbox still serves."""
    deadline = time.monotonic() + 5
    while True:
        count = sum(1 for r in sb.request_log if r["path"] == TOKEN_PATH and r["client_id"] == client_id)
        if count >= at_least or time.monotonic() > deadline:
            return count
        time.sleep(0.02)


def due_for_refresh(sb, url: str) -> dict:
    """A new app whose store holds live tokens from an earlier run, with the access token expired."""
    client_id, client_secret = sb.add_client()
    config = {
        "client_id": client_id,
        "client_secret": client_secret,
        "refresh_token": sb.grant_refresh_token(client_id=client_id),
        "token_url": sb.token_url,
        "api_url": sb.api_url,
        "token_store": url,
    }
    WhoopAuthenticator(config).access_token()
    store = open_token_store(url)
    with store.transaction(TokenKey(client_id)) as txn:
        txn.record.access_expires_at = 0
        txn.save(txn.record)
    return config


def assert_no_secrets(text: str) -> None:
    assert "sbx-rt-" not in text
    assert "sbx-at-" not in text


@pytest.fixture(scope="module")
def killed_runs(sb, tmp_path_factory, postgres_store):
    """Every case's process, killed at its step; (config, directory, returncode, output) per case."""
    cases, directories = {}, {}
    for kind, kill_at, _ in CASES:
        directory = directories[kind, kill_at] = tmp_path_factory.mktemp("crash")
        config = due_for_refresh(sb, store_url(kind, directory / "store", postgres_store))
        cases[f"{kind}-{kill_at}"] = {"config": config, "kill_at": kill_at, "output": str(directory / "out")}
    results = run_processes(cases)
    return {
        (kind, kill_at): (
            cases[f"{kind}-{kill_at}"]["config"],
            directories[kind, kill_at] / "store",
            *results[f"{kind}-{kill_at}"],
        )
        for kind, kill_at, _ in CASES
    }


@pytest.mark.parametrize(("kind", "kill_at", "expected_posts"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_kill_during_refresh_then_run_again(sb, killed_runs, kind, kill_at, expected_posts):
    config, directory, returncode, output = killed_runs[kind, kill_at]
    assert returncode == -9, f"the child was not killed at {kill_at} (rc={returncode}): {output[-800:]}"
    assert_no_secrets(output)
    client_id = config["client_id"]
    posts_before = token_posts(sb, client_id, at_least=1 + (expected_posts != 1))
    assert posts_before == 1 + (expected_posts != 1)  # the seeding refresh, plus the killed one if sent

    rerun = WhoopAuthenticator(config)
    location = open_token_store(config["token_store"]).location
    if expected_posts is None:
        with pytest.raises(WhoopAuthError) as failure:
            rerun.access_token()
        message = str(failure.value)
        assert "invalid_grant" in message
        assert "never finished" in message  # the intent record explains what happened
        assert "tap-whoop auth" in message
        assert location in message
        assert_no_secrets(message)
        return
    token = rerun.access_token()
    assert token_posts(sb, client_id, at_least=posts_before + expected_posts) - posts_before == expected_posts
    assert requests.get(sb.api_url + PATHS["profile"], auth=rerun, timeout=10).status_code == 200
    assert open_token_store(config["token_store"]).load(TokenKey(client_id)).access_token == token
    assert not list(directory.glob(".tokens.json.*.tmp"))  # adopted or cleaned up


def test_concurrent_runs_refresh_once_and_all_succeed(sb, tmp_path, postgres_store):
    """Runs that all find the access token expired: one refreshes, the others wait and use its tokens."""
    urls = {kind: store_url(kind, tmp_path / kind, postgres_store) for kind in CONCURRENT_STORES}
    configs = {kind: due_for_refresh(sb, url) for kind, url in urls.items()}
    start_at = time.time() + 1.0
    cases = {
        f"{kind}-{n}": {
            "config": config,
            "kill_at": "",
            "start_at": start_at,
            "output": str(tmp_path / f"{kind}-{n}"),
        }
        for kind, config in configs.items()
        for n in range(CONCURRENT_RUNS)
    }
    for case_id, (returncode, output) in run_processes(cases).items():
        assert returncode == 0, f"{case_id}: {output[-800:]}"
        assert json.loads(output.splitlines()[-1])["status"] == 200
        assert_no_secrets(output)
    for kind, config in configs.items():
        assert token_posts(sb, config["client_id"], at_least=2) == 2, (
            kind
        )  # the seeding refresh + exactly one more
