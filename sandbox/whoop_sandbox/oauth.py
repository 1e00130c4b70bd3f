"""OAuth 2.0 as WHOOP runs it (Ory Hydra): authorization code, rotating refresh tokens, client_secret_post."""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from dataclasses import dataclass

from .clock import Clock
from .data import ALL_SCOPES

CODE_TTL_SECONDS = 600
KNOWN_SCOPES = frozenset(ALL_SCOPES) | {"offline"}


class OAuthError(Exception):
    """An OAuth error response: `status` and the RFC 6749 `error` code."""

    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description

    def payload(self) -> dict:
        return {"error": self.error, "error_description": self.description, "status_code": self.status}


@dataclass
class App:
    client_id: str
    client_secret: str


@dataclass
class Grant:
    """One live token pair; refreshing replaces the whole pair."""

    client_id: str
    athlete: int
    scopes: tuple[str, ...]
    access_token: str
    expires_at: float
    refresh_token: str | None


@dataclass
class Code:
    client_id: str
    redirect_uri: str
    athlete: int
    scopes: tuple[str, ...]
    expires_at: float


class OAuthServer:
    def __init__(self, access_token_ttl: float, clock: Clock = time.time):
        self.access_token_ttl = access_token_ttl
        self.clock = clock
        self.apps: dict[str, App] = {}
        self._lock = threading.Lock()
        self._access: dict[str, Grant] = {}
        self._refresh: dict[str, Grant] = {}
        self._codes: dict[str, Code] = {}

    def add_app(self) -> App:
        app = App(str(uuid.uuid4()), "sbx-secret-" + secrets.token_urlsafe(24))
        self.apps[app.client_id] = app
        return app

    def check_client(self, client_id: str | None, client_secret: str | None) -> App:
        app = self.apps.get(client_id or "")
        if app is None or not secrets.compare_digest(app.client_secret, client_secret or ""):
            raise OAuthError(
                401,
                "invalid_client",
                "Client authentication failed (e.g., unknown client, no client authentication included, "
                "or unsupported authentication method).",
            )
        return app

    def _issue(self, client_id: str, athlete: int, scopes: tuple[str, ...]) -> Grant:
        grant = Grant(
            client_id=client_id,
            athlete=athlete,
            scopes=scopes,
            access_token="sbx-at-" + secrets.token_urlsafe(32),
            expires_at=self.clock() + self.access_token_ttl,
            refresh_token="sbx-rt-" + secrets.token_urlsafe(32) if "offline" in scopes else None,
        )
        self._access[grant.access_token] = grant
        if grant.refresh_token:
            self._refresh[grant.refresh_token] = grant
        return grant

    def grant(
        self, client_id: str, athlete: int, scopes: tuple[str, ...] = ("offline", *ALL_SCOPES)
    ) -> Grant:
        with self._lock:
            return self._issue(client_id, athlete, scopes)

    def authorize(self, client_id: str, redirect_uri: str, scope: str, athlete: int) -> str:
        scopes = tuple(scope.split())
        unknown = [s for s in scopes if s not in KNOWN_SCOPES]
        if unknown:
            raise OAuthError(400, "invalid_scope", f"The requested scope is invalid: {' '.join(unknown)}")
        code = "sbx-code-" + secrets.token_urlsafe(24)
        with self._lock:
            expires_at = self.clock() + CODE_TTL_SECONDS
            self._codes[code] = Code(client_id, redirect_uri, athlete, scopes, expires_at)
        return code

    def exchange_code(self, app: App, code: str | None, redirect_uri: str | None) -> Grant:
        with self._lock:
            pending = self._codes.pop(code or "", None)
            if (
                pending is None
                or pending.expires_at < self.clock()
                or pending.client_id != app.client_id
                or pending.redirect_uri != redirect_uri
            ):
                raise OAuthError(
                    400,
                    "invalid_grant",
                    "The provided authorization grant is invalid, expired, revoked, does not match the "
                    "redirection URI used in the authorization request, or was issued to another client.",
                )
            return self._issue(app.client_id, pending.athlete, pending.scopes)

    def refresh(self, app: App, refresh_token: str | None) -> Grant:
        # Popping under the lock makes rotation atomic: of two concurrent refreshes only one finds the token.
        with self._lock:
            key = refresh_token or ""
            old = self._refresh.get(key)
            if old is None or old.client_id != app.client_id:
                raise OAuthError(
                    400,
                    "invalid_grant",
                    "The provided authorization grant (e.g., authorization code, resource owner credentials) "
                    "or refresh token is invalid, expired, revoked, does not match the redirection URI "
                    "used in the authorization request, or was issued to another client.",
                )
            del self._refresh[key]
            self._access.pop(old.access_token, None)
            return self._issue(app.client_id, old.athlete, old.scopes)

    def expired(self, grant: Grant) -> bool:
        return grant.expires_at < self.clock()

    def lookup(self, access_token: str) -> Grant | None:
        """The grant behind an access token, expired or not (None if unknown or revoked)."""
        with self._lock:
            return self._access.get(access_token)

    def revoke_athlete(self, client_id: str, athlete: int) -> int:
        """Drop every grant of one athlete for one app (their access and refresh tokens die)."""
        with self._lock:
            grants = {
                id(g): g
                for g in [*self._access.values(), *self._refresh.values()]
                if g.client_id == client_id and g.athlete == athlete
            }
            for grant in grants.values():
                self._access.pop(grant.access_token, None)
                if grant.refresh_token:
                    self._refresh.pop(grant.refresh_token, None)
            return len(grants)

    def expire_access_tokens(self) -> None:
        with self._lock:
            for grant in self._access.values():
                grant.expires_at = 0.0

    @staticmethod
    def token_response(grant: Grant, ttl: float) -> dict:
        body = {
            "access_token": grant.access_token,
            "expires_in": int(ttl),
            "scope": " ".join(grant.scopes),
            "token_type": "bearer",
        }
        if grant.refresh_token:
            body["refresh_token"] = grant.refresh_token
        return body
