"""Invite links for athlete enrollment: `public_url/connect?invite=...`, signed and expiring.

The token is an itsdangerous signature (HMAC-SHA256 keyed by `service_secret`, salted per purpose) over the
expiry time and the app's client_id digest, so an invite for one app never opens another's enrollment and a
changed secret voids every open invite. An invite may be used until it expires (a coach can send one link
to a team); each use still needs the athlete's own consent at WHOOP.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
import typing as t
from urllib.parse import urlencode

if t.TYPE_CHECKING:
    from collections.abc import Mapping

INVITE_SALT = "tap-whoop.invite"
DURATION = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_VALIDITY = dt.timedelta(days=90)


class InviteError(Exception):
    """An invite cannot be made or is not valid; the message is fit for the person holding it."""


class InviteExpired(InviteError):
    pass


def parse_duration(text: str) -> dt.timedelta:
    """`30m`, `12h`, `7d`, `2w` as a timedelta (at most 90 days)."""
    match = DURATION.match(text)
    if not match:
        raise InviteError(f"expected a duration like 30m, 12h, 7d or 2w, got {text!r}")
    duration = dt.timedelta(seconds=int(match[1]) * UNITS[match[2]])
    if not dt.timedelta(0) < duration <= MAX_VALIDITY:
        raise InviteError(f"an invite is valid for more than nothing and at most {MAX_VALIDITY.days} days")
    return duration


def _app(config: Mapping[str, t.Any]) -> str:
    return hashlib.sha256(str(config["client_id"]).encode()).hexdigest()[:16]


def _serializer(config: Mapping[str, t.Any]) -> t.Any:
    from itsdangerous import URLSafeSerializer

    secret = config.get("service_secret")
    if not secret:
        raise InviteError(
            "Set service_secret (a random string of at least 32 characters, e.g. "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    return URLSafeSerializer(str(secret), salt=INVITE_SALT)


def connect_url(config: Mapping[str, t.Any]) -> str:
    public_url = config.get("public_url")
    if not public_url:
        raise InviteError("Set public_url: the external base URL of `tap-whoop serve` (https://...)")
    return str(public_url).rstrip("/") + "/connect"


def make_invite(config: Mapping[str, t.Any], valid_for: dt.timedelta) -> tuple[str, dt.datetime]:
    """An invite URL and when it expires."""
    expires = int(time.time() + valid_for.total_seconds())
    token = _serializer(config).dumps({"app": _app(config), "exp": expires})
    url = f"{connect_url(config)}?{urlencode({'invite': token})}"
    return url, dt.datetime.fromtimestamp(expires, dt.UTC)


def check_invite(config: Mapping[str, t.Any], token: str) -> dt.datetime:
    """When a genuine invite for this app expires; raises `InviteError` (or `InviteExpired`) otherwise."""
    from itsdangerous import BadSignature

    try:
        payload = _serializer(config).loads(token)
    except BadSignature:
        raise InviteError(
            "This invite link is not valid (it was altered or made for another service)."
        ) from None
    if (
        not isinstance(payload, dict)
        or payload.get("app") != _app(config)
        or not isinstance(payload.get("exp"), int)
    ):
        raise InviteError("This invite link is not valid for this WHOOP app.")
    expires = dt.datetime.fromtimestamp(payload["exp"], dt.UTC)
    if payload["exp"] < time.time():
        raise InviteExpired(f"This invite link expired on {expires:%Y-%m-%d %H:%M} UTC. Ask for a new one.")
    return expires
