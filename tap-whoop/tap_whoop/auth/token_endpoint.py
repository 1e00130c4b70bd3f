"""WHOOP's OAuth 2.0 token endpoint: one POST, and what its outcome says about the refresh token.

Shared by the refresh protocol (`authenticator`) and the authorization-code flow (`authorize`). The outcome is
one of three, because WHOOP rotates the refresh token the moment it accepts a refresh: certainly not sent
(safe to try again), rejected with an OAuth error (nothing rotated), or uncertain (it may have rotated).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any

import requests
import urllib3.exceptions

from tap_whoop.stores.record import TokenRecord


class TokenRequestNotSent(Exception):
    """The token request certainly never reached WHOOP (connection refused, DNS, connect timeout, TLS)."""


class TokenRequestUncertain(Exception):
    """The token request may have reached WHOOP, which may have rotated the refresh token."""


class TokenRequestRejected(Exception):
    """WHOOP answered with an OAuth error; the refresh token was not rotated."""

    def __init__(self, error: str, status: int):
        super().__init__(error)
        self.error, self.status = error, status
        self.interrupted_at: float | None = None


def _nothing_sent(exc: requests.RequestException) -> bool:
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError) and exc.args:
        reason = getattr(exc.args[0], "reason", None)
        # ConnectTimeoutError includes NewConnectionError (refused, DNS failure); a TLS handshake failure
        # also precedes the request. A reset or "connection aborted" is not here: it may follow the send.
        unsent = (urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.SSLError)
        return isinstance(reason, unsent)
    return False


def post_token_request(
    token_url: str, form: Mapping[str, str], timeout: tuple[float, float]
) -> dict[str, Any]:
    """POST to WHOOP's token endpoint (client_secret_post); the parsed token response.

    Raises `TokenRequestNotSent` (safe to try again), `TokenRequestRejected` (an OAuth error: nothing
    rotated) or `TokenRequestUncertain` (WHOOP may have rotated the token).
    A fresh session per request: a stale keep-alive connection would turn "not sent" into "maybe sent".
    """
    with requests.Session() as session:
        try:
            headers = {"Accept": "application/json"}
            response = session.post(token_url, data=dict(form), timeout=timeout, headers=headers)
        except requests.RequestException as exc:
            if _nothing_sent(exc):
                raise TokenRequestNotSent(type(exc).__name__) from None
            raise TokenRequestUncertain(f"{type(exc).__name__} after the request was sent") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code == 429:
        raise TokenRequestNotSent("HTTP 429 (rate limited)")
    if 400 <= response.status_code < 500 and isinstance(body, dict) and isinstance(body.get("error"), str):
        raise TokenRequestRejected(body["error"], response.status_code)
    if response.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
        kind = "a malformed" if response.ok else "an error"
        raise TokenRequestUncertain(f"HTTP {response.status_code} with {kind} body")
    return body


def record_from_token_response(
    base: TokenRecord, body: Mapping[str, Any], used_refresh_token: str | None, source: str
) -> TokenRecord:
    """`base` updated with a token response; without a new refresh token the one just used stays valid."""
    try:
        ttl = float(body.get("expires_in") or 3600)
    except (TypeError, ValueError):
        ttl = 3600.0
    scope = body.get("scope")
    return dataclasses.replace(
        base,
        refresh_token=str(body.get("refresh_token") or used_refresh_token or "") or None,
        access_token=str(body["access_token"]),
        access_expires_at=time.time() + ttl,
        access_ttl=ttl,
        scope=scope if isinstance(scope, str) else base.scope,
        source=source,
        refresh_started_at=None,
        refresh_started_fingerprint=None,
    )
