"""Opaque, tamper-evident `nextToken`s carrying the collection cursor."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json


class InvalidToken(ValueError):
    pass


class TokenCodec:
    def __init__(self, seed: int):
        self._key = hashlib.sha256(f"whoop-sandbox-paging:{seed}".encode()).digest()

    def _mac(self, payload: bytes) -> str:
        return base64.urlsafe_b64encode(hmac.digest(self._key, payload, "sha256")[:9]).decode()

    def encode(self, kind: str, after: tuple[int, str] | None, loop: int | None = None) -> str:
        payload = json.dumps([kind, list(after) if after else None, loop], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + self._mac(payload)

    def decode(self, kind: str, token: str) -> tuple[tuple[int, str] | None, int | None]:
        """(cursor, loop id) of a token this server issued for `kind`; InvalidToken otherwise."""
        try:
            body, mac = token.rsplit(".", 1)
            payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            if not hmac.compare_digest(mac, self._mac(payload)):
                raise InvalidToken("nextToken was not issued by this server")
            token_kind, after, loop = json.loads(payload)
        except (ValueError, TypeError) as exc:
            raise InvalidToken("nextToken is malformed") from exc
        if token_kind != kind:
            raise InvalidToken("nextToken belongs to another collection")
        return (tuple(after) if after else None), loop
