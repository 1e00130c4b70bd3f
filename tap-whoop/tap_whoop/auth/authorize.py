"""`tap-whoop auth`: WHOOP's OAuth 2.0 authorization-code flow, ending with an athlete in the token store.

Prints (and opens) WHOOP's consent page, catches the redirect on a loopback callback server bound to
`redirect_uri` — or, on a headless machine, takes the redirect URL pasted from any browser — checks `state`,
exchanges the code and enrolls whoever consented under their WHOOP user_id (a new athlete, or new tokens for
one already there). The command line around it is in `tap_whoop.cli`; the enrollment service
(`tap_whoop.service.enroll`) shares `authorize_url` and `exchange_code`.
"""

from __future__ import annotations

import secrets
import threading
import webbrowser
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import click

from tap_whoop.client.api import WhoopClient
from tap_whoop.errors import (
    TokenRequestNotSent,
    TokenRequestRejected,
    TokenRequestUncertain,
    TokenStoreError,
    WhoopAPIError,
)
from tap_whoop.whoop import SCOPES

LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}


def authorize_url(auth_url: str, client_id: str, redirect_uri: str, state: str) -> str:
    query = {
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": SCOPES,
        "state": state,
    }
    return f"{auth_url}{'&' if '?' in auth_url else '?'}{urlencode(query)}"


def code_from_redirect(redirect_url: str, state: str) -> str:
    """The authorization code of WHOOP's redirect, once its `state` is ours."""
    params = {k: v[-1] for k, v in parse_qs(urlsplit(redirect_url.strip()).query).items()}
    if params.get("state") != state:
        raise click.ClickException(
            "The redirect's `state` does not match this authorization attempt (a stale or forged link). "
            "Nothing was saved; run `tap-whoop auth` again and use the new link."
        )
    if "error" in params:
        detail = params.get("error_description") or ""
        raise click.ClickException(f"WHOOP did not authorize: {params['error']} {detail}".strip())
    if not params.get("code"):
        raise click.ClickException("The redirect URL carries no authorization code.")
    return params["code"]


class _CallbackServer(HTTPServer):
    """Waits for the one redirect to `redirect_uri`'s path; other requests (favicon, ...) get a 404."""

    def __init__(self, redirect_uri: str):
        parts = urlsplit(redirect_uri)
        host = parts.hostname or ""
        if parts.scheme != "http" or host not in LOOPBACK_HOSTS or not parts.port:
            raise click.UsageError(
                f"redirect_uri {redirect_uri} is not an http loopback address with a port, so no local "
                "server can catch it: use --paste and paste the redirect URL from your browser."
            )
        self.path = parts.path or "/"
        self.redirect_url: str | None = None
        self.received = threading.Event()
        bind = "127.0.0.1" if host == "localhost" else host
        try:
            super().__init__((bind, parts.port), _CallbackHandler)
        except OSError as exc:
            msg = f"Cannot listen on {bind}:{parts.port} for the redirect ({exc.strerror}); try --paste."
            raise click.ClickException(msg) from None


class _CallbackHandler(BaseHTTPRequestHandler):
    server: _CallbackServer

    def do_GET(self) -> None:
        if urlsplit(self.path).path != self.server.path or self.server.received.is_set():
            self.send_error(404)
            return
        self.server.redirect_url = self.path
        body = (
            b"<!doctype html><title>tap-whoop</title><p>tap-whoop received WHOOP's answer. "
            b"You can close this window and return to the terminal.</p>"
        )
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.server.received.set()

    def log_message(self, format: str, *args: Any) -> None:  # the query holds the code: keep it out of logs
        return


def wait_for_redirect(server: _CallbackServer, timeout: float) -> str:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        if not server.received.wait(timeout):
            msg = f"No redirect arrived within {timeout:.0f}s. Run `tap-whoop auth` again (or use --paste)."
            raise click.ClickException(msg)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert server.redirect_url is not None
    return server.redirect_url


class CodeExchangeFailed(Exception):
    """The authorization code could not be exchanged; the message says why (never a secret)."""


def exchange_code(config: Mapping[str, Any], code: str, redirect_uri: str) -> dict[str, Any]:
    """The token response for an authorization code (it must carry a refresh token)."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": config["client_id"],
        "client_secret": config["client_secret"],
    }
    try:
        body = WhoopClient.for_config(config).token_request(config["token_url"], form)
    except TokenRequestRejected as exc:
        hint = " (check client_id and client_secret)" if exc.error == "invalid_client" else ""
        raise CodeExchangeFailed(f"WHOOP refused the authorization code: {exc.error}{hint}") from None
    except (TokenRequestNotSent, TokenRequestUncertain) as exc:
        raise CodeExchangeFailed(f"The code exchange failed ({exc})") from None
    if not body.get("refresh_token"):
        raise CodeExchangeFailed(
            "WHOOP issued no refresh token: the `offline` scope was not granted; authorize again and allow "
            "offline access"
        )
    return body


def save_tokens(config: Mapping[str, Any], body: Mapping[str, Any], source: str = "auth") -> tuple[int, str]:
    """Enroll the athlete of a fresh token response (one profile call); returns (user_id, store location)."""
    from tap_whoop.athletes.registry import AthleteRegistry

    registry = AthleteRegistry(config)
    user_id, _ = registry.enroll(body, source)
    return user_id, registry.store.location


def authorize(config: Mapping[str, Any], *, no_browser: bool, paste: bool, timeout: float) -> None:
    """The whole flow for a complete config (the tap's settings with their defaults)."""
    redirect_uri = str(config["redirect_uri"])
    state = secrets.token_urlsafe(24)
    url = authorize_url(str(config["auth_url"]), config["client_id"], redirect_uri, state)

    server = None if paste else _CallbackServer(redirect_uri)  # listen before anyone can follow the link
    click.echo("Open this link, sign in to WHOOP and allow access:\n")
    click.echo(f"  {url}\n")
    if server is None:
        redirect_url = click.prompt(
            f"Then paste the full URL your browser was sent to (it starts with {redirect_uri})", err=True
        )
    else:
        if not no_browser:
            webbrowser.open(url)
        click.echo(f"Waiting for WHOOP to redirect to {redirect_uri} ...", err=True)
        redirect_url = wait_for_redirect(server, timeout)

    code = code_from_redirect(redirect_url, state)
    try:
        body = exchange_code(config, code, redirect_uri)
    except CodeExchangeFailed as exc:
        raise click.ClickException(f"{exc}; run `tap-whoop auth` again.") from None
    try:
        user_id, location = save_tokens(config, body)
    except (TokenStoreError, WhoopAPIError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Authorized athlete {user_id} (scopes: {body.get('scope') or SCOPES}).")
    click.echo(f"Tokens saved to {location}; the tap refreshes and rotates them from now on.")
    click.echo(
        "Next: `meltano run whoop-duckdb` (or `tap-whoop --config CONFIG --test` to check the connection)."
    )
