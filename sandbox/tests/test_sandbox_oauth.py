"""Point 4: WHOOP's OAuth — authorization code with redirect, rotating refresh tokens, expiry, bad clients."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import requests
from whoop_sandbox.clock import ManualClock

REDIRECT = "http://localhost:8080/callback"
NOW = datetime(2026, 10, 25, 0, 59, 30, tzinfo=UTC)
SCOPES = "offline read:cycles read:recovery read:sleep read:workout read:profile read:body_measurement"


def authorize(sandbox, **overrides) -> dict:
    params = {
        "client_id": sandbox.client_id,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": SCOPES,
        "state": "state-12345",
        **overrides,
    }
    response = requests.get(sandbox.auth_url, params=params, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def token(sandbox, **form) -> requests.Response:
    body = {"client_id": sandbox.client_id, "client_secret": sandbox.client_secret, **form}
    return requests.post(sandbox.token_url, data=body, timeout=10)


def api(sandbox, access_token: str, path: str = "/v2/user/profile/basic") -> requests.Response:
    return requests.get(
        sandbox.api_url + path, headers={"Authorization": f"Bearer {access_token}"}, timeout=10
    )


def test_authorization_code_flow_for_the_consenting_athlete(whoop_sandbox):
    whoop_sandbox.consent_athlete = 1
    query = authorize(whoop_sandbox)
    assert query["state"] == "state-12345"
    response = token(
        whoop_sandbox, grant_type="authorization_code", code=query["code"], redirect_uri=REDIRECT
    )
    assert response.status_code == 200
    tokens = response.json()
    assert set(tokens) == {"access_token", "refresh_token", "expires_in", "scope", "token_type"}
    assert set(tokens["scope"].split()) == set(SCOPES.split())
    assert api(whoop_sandbox, tokens["access_token"]).json()["user_id"] == whoop_sandbox.athletes[1].user_id
    # A code is single use.
    again = token(whoop_sandbox, grant_type="authorization_code", code=query["code"], redirect_uri=REDIRECT)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_code_is_bound_to_its_redirect_uri(whoop_sandbox):
    code = authorize(whoop_sandbox)["code"]
    response = token(whoop_sandbox, grant_type="authorization_code", code=code, redirect_uri=REDIRECT + "x")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_short_state_and_bad_requests_are_refused(whoop_sandbox):
    query = authorize(whoop_sandbox, state="short")
    assert query["error"] == "invalid_state"
    assert "code" not in query
    assert authorize(whoop_sandbox, response_type="token")["error"] == "unsupported_response_type"
    assert authorize(whoop_sandbox, scope="read:everything")["error"] == "invalid_scope"
    unknown = requests.get(
        whoop_sandbox.auth_url,
        params={"client_id": "nope", "redirect_uri": REDIRECT, "response_type": "code", "state": "x" * 8},
        allow_redirects=False,
        timeout=10,
    )
    assert unknown.status_code == 400


def test_without_offline_scope_there_is_no_refresh_token(whoop_sandbox):
    code = authorize(whoop_sandbox, scope="read:profile")["code"]
    tokens = token(whoop_sandbox, grant_type="authorization_code", code=code, redirect_uri=REDIRECT).json()
    assert "refresh_token" not in tokens
    assert api(whoop_sandbox, tokens["access_token"]).status_code == 200
    # ...and the token only opens what its scopes allow.
    assert api(whoop_sandbox, tokens["access_token"], "/v2/cycle").status_code == 401


def test_wrong_client_credentials_are_401(whoop_sandbox):
    refresh = whoop_sandbox.grant_refresh_token()
    for form in (
        {"client_secret": "wrong"},
        {"client_id": "00000000-0000-4000-8000-000000000000"},
        {"client_secret": ""},
    ):
        response = token(whoop_sandbox, grant_type="refresh_token", refresh_token=refresh, **form)
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"
    # HTTP Basic is not what WHOOP accepts: credentials belong in the form body.
    basic = requests.post(
        whoop_sandbox.token_url,
        data={"grant_type": "refresh_token", "refresh_token": refresh},
        auth=(whoop_sandbox.client_id, whoop_sandbox.client_secret),
        timeout=10,
    )
    assert basic.status_code == 401
    # The refresh token survived all of that.
    assert token(whoop_sandbox, grant_type="refresh_token", refresh_token=refresh).status_code == 200


def test_refresh_rotates_both_tokens(whoop_sandbox):
    first = token(
        whoop_sandbox, grant_type="refresh_token", refresh_token=whoop_sandbox.grant_refresh_token()
    )
    first = first.json()
    assert api(whoop_sandbox, first["access_token"]).status_code == 200
    second = token(whoop_sandbox, grant_type="refresh_token", refresh_token=first["refresh_token"]).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    # The old pair is dead: refresh → 400 invalid_grant, API → 401.
    reused = token(whoop_sandbox, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert api(whoop_sandbox, first["access_token"]).status_code == 401
    assert api(whoop_sandbox, second["access_token"]).status_code == 200
    garbage = token(whoop_sandbox, grant_type="refresh_token", refresh_token="sbx-rt-made-up")
    assert garbage.status_code == 400
    assert token(whoop_sandbox, grant_type="password").json()["error"] == "unsupported_grant_type"


def test_refresh_token_of_another_app_is_invalid(whoop_sandbox):
    other_id, other_secret = whoop_sandbox.add_client()
    refresh = whoop_sandbox.grant_refresh_token()
    response = token(
        whoop_sandbox,
        grant_type="refresh_token",
        refresh_token=refresh,
        client_id=other_id,
        client_secret=other_secret,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_of_concurrent_refreshes_exactly_one_wins(whoop_sandbox):
    for _ in range(3):
        refresh = whoop_sandbox.grant_refresh_token()
        barrier = threading.Barrier(8)
        results = []

        def race(refresh=refresh, barrier=barrier, results=results):
            barrier.wait()
            results.append(
                token(whoop_sandbox, grant_type="refresh_token", refresh_token=refresh).status_code
            )

        threads = [threading.Thread(target=race) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)
        assert sorted(results) == [200] + [400] * 7


def test_access_tokens_expire(whoop_sandbox_factory):
    clock = ManualClock(NOW)
    sandbox = whoop_sandbox_factory(access_token_ttl=60, clock=clock)
    tokens = token(sandbox, grant_type="refresh_token", refresh_token=sandbox.grant_refresh_token()).json()
    assert tokens["expires_in"] == 60
    assert api(sandbox, tokens["access_token"]).status_code == 200
    clock.advance(60)
    assert api(sandbox, tokens["access_token"]).status_code == 200  # valid through its last second
    clock.advance(0.001)
    expired = api(sandbox, tokens["access_token"])
    assert expired.status_code == 401
    assert "expired" in expired.json()["message"]
    # The refresh token still works after the access token expired.
    renewed = token(sandbox, grant_type="refresh_token", refresh_token=tokens["refresh_token"]).json()
    assert api(sandbox, renewed["access_token"]).status_code == 200
    sandbox.expire_access_tokens()
    assert api(sandbox, renewed["access_token"]).status_code == 401


def test_missing_or_malformed_authorization_is_401(whoop_sandbox):
    assert requests.get(whoop_sandbox.api_url + "/v2/cycle", timeout=10).status_code == 401
    assert api(whoop_sandbox, "sbx-at-made-up").status_code == 401
    basic = requests.get(whoop_sandbox.api_url + "/v2/cycle", auth=("a", "b"), timeout=10)
    assert basic.status_code == 401


def test_revoking_access(whoop_sandbox):
    tokens = token(
        whoop_sandbox, grant_type="refresh_token", refresh_token=whoop_sandbox.grant_refresh_token()
    )
    tokens = tokens.json()
    response = requests.delete(
        whoop_sandbox.api_url + "/v2/user/access",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=10,
    )
    assert response.status_code == 204
    assert api(whoop_sandbox, tokens["access_token"]).status_code == 401
    assert (
        token(whoop_sandbox, grant_type="refresh_token", refresh_token=tokens["refresh_token"]).status_code
        == 400
    )


def test_authorization_codes_expire_after_ten_minutes(whoop_sandbox_factory):
    clock = ManualClock(NOW)
    sandbox = whoop_sandbox_factory(clock=clock)
    fresh, stale = authorize(sandbox)["code"], authorize(sandbox)["code"]
    clock.advance(600)
    ok = token(sandbox, grant_type="authorization_code", code=fresh, redirect_uri=REDIRECT)
    assert ok.status_code == 200
    clock.advance(0.001)
    late = token(sandbox, grant_type="authorization_code", code=stale, redirect_uri=REDIRECT)
    assert late.status_code == 400
    assert late.json()["error"] == "invalid_grant"
