"""WHOOP OAuth 2.0 with rotating refresh tokens, safe across crashes, threads and concurrent runs.

A refresh happens inside `TokenStore.transaction` (exclusive across processes) and goes:
re-read the store → durable intent record → POST → save the new tokens (atomic, fsynced) → release → use.
The new refresh token is on disk before the access token that came with it is used, a concurrent run waits
and then finds the fresh tokens instead of spending the dead one, and a still-valid access token is reused
across runs. See docs/AUTH.md for the guarantees and which crash instants are recoverable.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import requests
from singer_sdk.authenticators import APIAuthenticatorBase

from tap_whoop import crash_points
from tap_whoop.auth.token_response import record_from_token_response
from tap_whoop.client.api import WhoopClient
from tap_whoop.errors import (
    CONSENT_AGAIN,
    Failure,
    TokenRequestNotSent,
    TokenRequestRejected,
    TokenRequestUncertain,
    TokenStoreError,
    WhoopAuthError,
)
from tap_whoop.stores import open_token_store
from tap_whoop.stores.tokens.record import (
    DEFAULT_ATHLETE,
    TokenKey,
    TokenRecord,
    TokenStore,
    TokenTransaction,
)
from tap_whoop.whoop import API_URL, TOKEN_URL


def _consent_again() -> str:
    return CONSENT_AGAIN[0].upper() + CONSENT_AGAIN[1:] + "."


def _when(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class WhoopAuthenticator(APIAuthenticatorBase):
    """Bearer access tokens for every request of a run, refreshed through the token store.

    One instance per run, shared by all streams and threads.
    """

    # Refresh when less than this (or a tenth of the token's lifetime) is left, so no request of a normal
    # run meets an expiry.
    access_token_margin_seconds: float = 300.0

    def __init__(
        self,
        config: Mapping[str, Any],
        logger: logging.Logger | None = None,
        athlete: str = DEFAULT_ATHLETE,
        *,
        store: TokenStore | None = None,
        use_config_token: bool | None = None,
        client: WhoopClient | None = None,
    ):
        """`athlete` keys the tokens in the store: one WHOOP app keeps many athletes' tokens.

        The `refresh_token` setting belongs to no known athlete: only the `default` slot reads it (unless
        `use_config_token` says otherwise). `store` shares one opened store between authenticators, and
        `client` the run's WHOOP client (the token endpoint is called through it).
        """
        super().__init__()
        self.logger = logger or logging.getLogger("tap-whoop")
        self._client_id = str(config.get("client_id") or "")
        self._client_secret = str(config.get("client_secret") or "")
        if use_config_token is None:
            use_config_token = athlete == DEFAULT_ATHLETE
        configured = str(config.get("refresh_token") or "") or None
        self._config_refresh_token = configured if use_config_token else None
        self._token_url = str(config.get("token_url") or TOKEN_URL)
        self.client = client or WhoopClient(str(config.get("api_url") or API_URL))
        if not self._client_id or not self._client_secret:
            raise WhoopAuthError(
                "Settings client_id and client_secret are required (from your WHOOP app).", kind=Failure.APP
            )
        try:
            self.store: TokenStore = store or open_token_store(config.get("token_store"))
        except TokenStoreError as exc:
            raise WhoopAuthError(str(exc), kind=Failure.APP) from None
        self.key = TokenKey(self._client_id, athlete)
        self._lock = threading.Lock()
        self._current: TokenRecord | None = None
        self._rejected: set[str] = set()
        self._refresh_failure: str | None = None  # set once a refresh may have spent the token

    def __repr__(self) -> str:
        return f"WhoopAuthenticator(store={self.store.location!r}, key={self.key!r})"

    # -- the SDK / requests interface
    # ----------------------------------------------------------------------------------------

    def authenticate_request(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.access_token()}"
        return request

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        return self.authenticate_request(r)

    def handle_unauthorized(self, rejected_access_token: str) -> None:
        """WHOOP refused this access token (401): never use it again; the next request gets a fresh one.

        Every thread that saw the 401 may call this; only the first request after it refreshes, and a
        concurrent run that already refreshed is picked up from the store instead.
        """
        with self._lock:
            self._rejected.add(rejected_access_token)
            if self._current and self._current.access_token == rejected_access_token:
                self._current = None

    def access_token(self) -> str:
        with self._lock:
            if self._usable(self._current):
                assert self._current is not None
                return str(self._current.access_token)
            if self._refresh_failure is not None:
                return self._fallback_access_token(self._refresh_failure)
            try:
                self._current = self._obtain()
            except TokenStoreError as exc:
                raise WhoopAuthError(str(exc), kind=Failure.APP) from None
            return str(self._current.access_token)

    def _fallback_access_token(self, failure: str) -> str:
        """After a refresh whose outcome is unknown, no second refresh in this run: the old token or stop."""
        current = self._current
        if (
            current is not None
            and current.access_token not in self._rejected
            and current.access_token_valid(0)
        ):
            return str(current.access_token)
        raise WhoopAuthError(failure, kind=Failure.TRANSIENT)

    # -- obtaining tokens
    # ----------------------------------------------------------------------------------------

    def _config_token_is_new(self, record: TokenRecord | None) -> bool:
        token = self._config_refresh_token
        if not token:
            return False
        return record is None or (token != record.refresh_token and not record.knows_config_token(token))

    def _usable(self, record: TokenRecord | None, margin: float | None = None) -> bool:
        return (
            record is not None
            and record.access_token_valid(self.access_token_margin_seconds if margin is None else margin)
            and record.access_token not in self._rejected
            and not self._config_token_is_new(record)
        )

    def _obtain(self) -> TokenRecord:
        record = self.store.load(self.key)
        if self._usable(record):
            assert record is not None
            self.logger.info(
                "Reusing the WHOOP access token from %s (valid until %s).",
                self.store.location,
                _when(record.access_expires_at or 0),
            )
            return record
        with self.store.transaction(self.key) as txn:
            if self._usable(txn.record):
                # Another run refreshed while we waited for the lock: use its tokens, spend nothing.
                self.logger.info("Using the tokens another run just refreshed in %s.", self.store.location)
                assert txn.record is not None
                return txn.record
            record = self._refresh(txn)
        crash_points.reach("unlocked")
        return record

    def _refresh(self, txn: TokenTransaction) -> TokenRecord:
        stored = txn.record
        candidates: list[tuple[str, str]] = []
        if self._config_token_is_new(stored):
            assert self._config_refresh_token is not None
            candidates.append(("config", self._config_refresh_token))
        if stored is not None and stored.refresh_token:
            candidates.append(("store", stored.refresh_token))
        if not candidates:
            msg = (
                f"No WHOOP refresh token: the token store {self.store.location} has none for this app and "
                f"the refresh_token setting is empty. {_consent_again()}"
            )
            raise WhoopAuthError(msg)
        for origin, refresh_token in candidates:
            try:
                return self._refresh_with(txn, origin, refresh_token)
            except TokenRequestRejected as exc:
                if exc.error == "invalid_grant" and origin == "config" and len(candidates) > 1:
                    # An old token in config (it was already rotated): never try it again; use the store's.
                    self.logger.warning(
                        "The refresh_token setting was rejected by WHOOP (invalid_grant: already used or "
                        "revoked); continuing with the token in %s.",
                        self.store.location,
                    )
                    base = dataclasses.replace(txn.record) if txn.record else TokenRecord(None)
                    base.remember_config_token(refresh_token)
                    txn.save(base)
                    continue
                if exc.error == "invalid_grant" and origin == "store":
                    winner = self.store.load(self.key)
                    if winner and winner.refresh_token != refresh_token and self._usable(winner):
                        # A run that took over our (expired) lease refreshed first: use its tokens.
                        self.logger.info(
                            "Another run refreshed first; using its tokens from %s.", self.store.location
                        )
                        return winner
                raise self._rejected_error(exc, origin) from None
        raise AssertionError("unreachable")

    def _refresh_with(self, txn: TokenTransaction, origin: str, refresh_token: str) -> TokenRecord:
        base = dataclasses.replace(txn.record) if txn.record else TokenRecord(None)
        fp = base.fingerprint(refresh_token)
        interrupted_at = base.refresh_started_at if base.refresh_started_fingerprint == fp else None
        # The intent record, durable before anything is sent: if this run dies or loses the answer, the next
        # one can tell the user exactly what happened instead of a bare invalid_grant.
        intent = dataclasses.replace(
            base,
            refresh_started_at=interrupted_at or time.time(),
            refresh_started_fingerprint=fp,
        )
        txn.save(intent)
        crash_points.reach("intent_saved")
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": self._client_id,
            "client_secret": self._client_secret,
            "scope": "offline",
        }
        try:
            body = self.client.token_request(self._token_url, form)
        except TokenRequestNotSent as exc:
            txn.save(
                dataclasses.replace(
                    intent,
                    refresh_started_at=base.refresh_started_at,
                    refresh_started_fingerprint=base.refresh_started_fingerprint,
                )
            )
            msg = (
                f"Could not reach WHOOP's token endpoint {self._token_url} ({exc}); nothing was sent and the "
                f"tokens in {self.store.location} are intact. Try again later."
            )
            raise WhoopAuthError(msg, kind=Failure.TRANSIENT) from None
        except TokenRequestUncertain as exc:
            return self._after_uncertain(txn, str(exc))
        except TokenRequestRejected as exc:
            txn.save(base)  # nothing was rotated: withdraw the intent
            exc.interrupted_at = interrupted_at
            raise
        crash_points.reach("response_received")
        record = record_from_token_response(intent, body, refresh_token, source="refresh")
        if origin == "config":
            record.remember_config_token(refresh_token)
        # Persist first, use second: once this returns the new refresh token survives any crash.
        if txn.save(record):
            crash_points.reach("saved")
            self.logger.info(
                "Refreshed the WHOOP access token (valid until %s); the new refresh token is saved in %s.",
                _when(record.access_expires_at or 0),
                self.store.location,
            )
        else:
            self.logger.warning(
                "Refreshed the WHOOP access token, but %s meanwhile received other tokens (tap-whoop auth?); "
                "keeping those and using this access token for this run only.",
                self.store.location,
            )
        return record

    def _after_uncertain(self, txn: TokenTransaction, what: str) -> TokenRecord:
        """The request may have rotated the token; do not resend it. Fall back on what the store still has."""
        record = self.store.load(self.key) or txn.record
        msg = (
            f"The WHOOP token refresh failed ({what}). WHOOP may already have rotated the refresh token, "
            "so it was not sent again: resending a used token cannot recover the lost answer and may revoke "
            f"the authorization. The next run retries the token in {self.store.location} once; if WHOOP "
            "rejects it, run `tap-whoop auth` to authorize again."
        )
        if record is not None and record.access_token not in self._rejected and record.access_token_valid(30):
            self.logger.warning(
                "The WHOOP token refresh failed (%s); using the stored access token, still valid until %s. "
                "The refresh token was not resent.",
                what,
                _when(record.access_expires_at or 0),
            )
            self._refresh_failure = msg
            return record
        self._refresh_failure = msg
        raise WhoopAuthError(msg, kind=Failure.TRANSIENT)

    def _rejected_error(self, exc: TokenRequestRejected, origin: str) -> WhoopAuthError:
        where = "refresh_token setting" if origin == "config" else f"refresh token in {self.store.location}"
        if exc.error == "invalid_client":
            return WhoopAuthError(
                f"WHOOP rejected the app credentials (invalid_client, HTTP {exc.status}): check client_id "
                f"and client_secret. The {where} was not used up.",
                kind=Failure.APP,
            )
        if exc.error != "invalid_grant":
            refused = f"WHOOP refused the token refresh ({exc.error}, HTTP {exc.status})"
            return WhoopAuthError(f"{refused}. {_consent_again()}")
        detail = (
            f" A refresh with it started at {_when(exc.interrupted_at)} and never finished (the run was "
            "killed or lost WHOOP's answer after WHOOP rotated the token), so its successor was never saved."
            if exc.interrupted_at
            else " It was already used or revoked (the athlete withdrew their consent, or a run that kept "
            "its tokens elsewhere used it)."
        )
        # Without a refresh of ours left unfinished, the authorization was withdrawn at WHOOP's end.
        kind = Failure.NEEDS_REAUTHORIZATION if exc.interrupted_at else Failure.REVOKED
        return WhoopAuthError(
            f"WHOOP rejected the {where} (invalid_grant).{detail} {_consent_again()}", kind=kind
        )
