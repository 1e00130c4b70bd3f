"""What a token response from WHOOP's OAuth 2.0 token endpoint makes of a stored token record.

Shared by the refresh protocol (`authenticator`), the authorization-code flow (`authorize`) and enrollment
(`athletes`); the POST itself is the WHOOP client's (`tap_whoop.client.api.WhoopClient.token_request`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any

from tap_whoop.stores.tokens.record import TokenRecord


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
