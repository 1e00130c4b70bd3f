"""Point 7 and 8: faults on demand (deterministic by seed) and the request log."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from whoop_sandbox import Sandbox


@pytest.fixture
def sandbox(whoop_sandbox_factory):
    return whoop_sandbox_factory(rate_limits=[])


@pytest.fixture
def api(sandbox, make_client):
    return make_client(sandbox)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_for_count_requests_under_the_prefix(sandbox, api, status):
    sandbox.inject_fault(str(status), path_prefix="/developer/v2/cycle", count=2)
    assert api.get("/v2/activity/sleep").status_code == 200  # other paths unaffected
    first, second = api.get("/v2/cycle"), api.get("/v2/cycle/1")
    assert first.status_code == second.status_code == status
    if status == 502:
        assert first.headers["Content-Type"] == "text/html"
    assert api.get("/v2/cycle").status_code == 200  # count used up
    faulted = [e for e in sandbox.request_log if e.get("fault")]
    assert [(e["path"], e["status"]) for e in faulted] == [
        ("/developer/v2/cycle", status),
        ("/developer/v2/cycle/1", status),
    ]


def test_slow_response_still_answers(sandbox, api):
    sandbox.inject_fault("slow", delay=0.6)
    started = time.monotonic()
    response = api.get("/v2/cycle")
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.6
    assert response.json()["records"]


def test_timeout_outlasts_the_client(sandbox, api):
    sandbox.inject_fault("timeout", delay=1.5)
    with pytest.raises(requests.exceptions.ReadTimeout):
        api.get("/v2/cycle", timeout=0.4)
    assert api.get("/v2/cycle").status_code == 200


def test_dropped_connection(sandbox, api):
    sandbox.inject_fault("drop")
    with pytest.raises(requests.exceptions.ConnectionError):
        api.get("/v2/cycle")
    assert api.get("/v2/cycle").status_code == 200
    dropped = next(e for e in sandbox.request_log if e.get("fault") == "drop")
    assert dropped["status"] is None


def test_malformed_json(sandbox, api):
    sandbox.inject_fault("malformed_json", path_prefix="/developer/v2/user/")
    response = api.get("/v2/user/profile/basic")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    with pytest.raises(requests.exceptions.JSONDecodeError):
        response.json()
    assert api.get("/v2/user/profile/basic").json()["user_id"] == sandbox.athletes[0].user_id


def follow_with_loop_guard(api, token):
    """Page like a careful client: stop when a next_token repeats."""
    seen, pages = set(), 0
    while True:
        params = {"limit": 5, **({"nextToken": token} if token else {})}
        page = api.get("/v2/activity/sleep", **params).json()
        pages += 1
        token = page.get("next_token")
        if token in seen:
            raise RuntimeError("next_token loop detected", token, pages)
        if token is None or pages >= 10:
            return pages
        seen.add(token)


@pytest.mark.parametrize("from_page", [1, 2])
def test_next_token_loop_trips_a_loop_guard(sandbox, api, from_page):
    token = None
    if from_page == 2:
        token = api.get("/v2/activity/sleep", limit=5).json()["next_token"]
    sandbox.inject_fault("next_token_loop")
    with pytest.raises(RuntimeError, match="loop") as guard:
        follow_with_loop_guard(api, token)
    token = guard.value.args[1]
    assert guard.value.args[2] == 2  # tripped on the second page
    # It is a loop forever, not just once, until cleared.
    assert api.get("/v2/activity/sleep", limit=5, nextToken=token).json()["next_token"] == token
    sandbox.clear_faults()
    assert api.get("/v2/activity/sleep", limit=5, nextToken=token).json().get("next_token") != token


def test_faults_on_the_token_endpoint(sandbox, api):
    refresh = sandbox.grant_refresh_token()
    sandbox.inject_fault("503", path_prefix="/oauth/oauth2/token")
    session = requests.Session()  # one keep-alive connection: the faulted request's body must not linger
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh,
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
    }
    assert session.post(sandbox.token_url, data=form, timeout=10).status_code == 503
    # The failed attempt did not consume the token.
    assert session.post(sandbox.token_url, data=form, timeout=10).status_code == 200


def test_unknown_fault_kind(sandbox):
    with pytest.raises(ValueError, match="unknown fault kind"):
        sandbox.inject_fault("418")
    response = requests.post(f"{sandbox.base_url}/_sandbox/inject_fault", json={"kind": "418"}, timeout=10)
    assert response.status_code == 400


def test_fault_injection_over_http(sandbox, api):
    response = requests.post(
        f"{sandbox.base_url}/_sandbox/inject_fault", json={"kind": "500", "count": 1}, timeout=10
    )
    assert response.status_code == 200
    assert requests.get(f"{sandbox.base_url}/_sandbox/info", timeout=10).json()["faults"][0]["kind"] == "500"
    assert api.get("/v2/cycle").status_code == 500
    assert api.get("/v2/cycle").status_code == 200


def _statuses(seed: int) -> list[int]:
    with Sandbox(seed=seed, days=5, athletes=1, rate_limits=[], fault_rate=0.3) as sandbox:
        session = requests.Session()
        access = session.post(
            sandbox.token_url,
            data={
                "grant_type": "refresh_token",
                "refresh_token": sandbox.grant_refresh_token(),
                "client_id": sandbox.client_id,
                "client_secret": sandbox.client_secret,
            },
            timeout=10,
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {access}"}
        return [
            session.get(sandbox.api_url + "/v2/cycle", headers=headers, timeout=10).status_code
            for _ in range(40)
        ]


def test_random_fault_rate_is_reproducible_from_the_seed():
    first, again, other = _statuses(11), _statuses(11), _statuses(12)
    assert first == again
    assert first != other
    failures = sum(s != 200 for s in first)
    assert 4 <= failures <= 24
    assert set(first) <= {200, 500, 502, 503}


def test_stop_interrupts_a_sleeping_timeout(whoop_sandbox_factory, make_client):
    sandbox = whoop_sandbox_factory()
    client = make_client(sandbox)
    sandbox.inject_fault("timeout", delay=30)
    errors = []

    def call():
        try:
            client.get("/v2/cycle", timeout=20)
        except requests.exceptions.RequestException as exc:
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    sandbox.stop()
    thread.join(timeout=10)
    assert time.monotonic() - started < 5
    assert errors


def test_request_log(sandbox, api, make_client):
    sandbox.clear_log()
    api.get("/v2/cycle", limit=3)
    api.get("/v2/cycle/1")
    api.refresh(sandbox.grant_refresh_token())
    make_client(sandbox, athlete=1).get("/v2/user/profile/basic")
    requests.get(sandbox.api_url + "/v2/cycle", timeout=10)
    log = sandbox.request_log
    assert [(e["method"], e["path"], e["status"]) for e in log] == [
        ("GET", "/developer/v2/cycle", 200),
        ("GET", "/developer/v2/cycle/1", 404),
        ("POST", "/oauth/oauth2/token", 200),
        ("POST", "/oauth/oauth2/token", 200),
        ("GET", "/developer/v2/user/profile/basic", 200),
        ("GET", "/developer/v2/cycle", 401),
    ]
    assert set(log[0]) >= {"method", "path", "params", "status", "client_id", "user_id", "ts"}
    assert log[0]["params"] == {"limit": "3"}
    assert log[0]["client_id"] == sandbox.client_id
    assert log[0]["user_id"] == sandbox.athletes[0].user_id
    assert log[4]["user_id"] == sandbox.athletes[1].user_id
    assert log[5]["client_id"] is None
    assert log[0]["ts"] <= log[-1]["ts"]
    # Secrets of token requests never reach the log.
    text = repr(log)
    assert sandbox.client_secret not in text
    assert "sbx-rt-" not in text
    assert "sbx-at-" not in text
    assert log[2]["params"]["client_secret"] == "<redacted>"
    assert log[2]["params"]["grant_type"] == "refresh_token"
    over_http = requests.get(f"{sandbox.base_url}/_sandbox/log", timeout=10).json()["requests"]
    assert over_http == log  # control-plane calls are not logged themselves
    sandbox.clear_log()
    assert sandbox.request_log == []


def test_each_answered_request_is_in_the_log_before_its_response_arrives(sandbox, api):
    # Tests count requests right after a response; the entry must already be there, never a moment later.
    sandbox.clear_log()
    for answered in range(1, 41):
        api.get("/v2/cycle", limit=1)
        assert len(sandbox.request_log) == answered
