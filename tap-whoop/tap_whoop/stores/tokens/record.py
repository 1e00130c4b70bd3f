"""The token store's contract and its records: what a store keeps for one WHOOP app and athlete.

WHOOP rotates the refresh token on every refresh and the old one dies at once, so the store is the only copy
of a live credential. Every backend shares one contract (`TokenStore.transaction`): an exclusive,
cross-process critical section in which the caller reads the current record and saves its successor
atomically and durably, deletes it, or moves it to another key. Records are keyed by
`TokenKey(client_id, athlete)`: an enrolled athlete's key is their WHOOP user_id; any other key is a
*pending* slot whose athlete is not known yet (`default`: the single athlete of a store written before
athletes were keyed, or a `refresh_token` setting; `pending-*`: an import in progress). The record also holds
the athlete's registry entry (name, enrollment, status), so tokens and registry can never disagree.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import secrets
import time
from abc import ABC, abstractmethod
from typing import Any

DEFAULT_ATHLETE = "default"
PENDING_PREFIX = "pending-"
# How many config-token fingerprints a record remembers (config tokens that must never re-seed the store).
KNOWN_FINGERPRINTS = 20
LOCK_TIMEOUT_SECONDS = 180.0


def fingerprint(salt: str, token: str) -> str:
    """A salted hash that recognises a token without revealing it."""
    return hmac.new(salt.encode(), token.encode(), hashlib.sha256).hexdigest()[:32]


@dataclasses.dataclass(frozen=True)
class TokenKey:
    """Which tokens: one WHOOP app (client_id) and one athlete of it."""

    client_id: str
    athlete: str = DEFAULT_ATHLETE

    @property
    def id(self) -> str:
        return f"{self.client_id}/{self.athlete}"

    @property
    def user_id(self) -> int | None:
        """The WHOOP user_id of an enrolled athlete's key; None for a pending slot."""
        return int(self.athlete) if self.athlete.isdigit() else None

    def __repr__(self) -> str:  # the client_id is a setting marked secret
        return f"TokenKey(client_id=<redacted>, athlete={self.athlete!r})"

    __str__ = __repr__


@dataclasses.dataclass
class TokenRecord:
    """The live credentials of one key plus the bookkeeping that makes rotation safe.

    `known_config_fingerprints` lists config refresh tokens already absorbed into this record (the one that
    seeded it, and the one configured when `tap-whoop auth` wrote it): such a token in config is stale, any
    other one is a new authorization and wins. `refresh_started_at` is the intent record: set (durably)
    just before a refresh token is sent to WHOOP, cleared when its successor is saved. Found set later, it
    means a run died or lost the answer while WHOOP may already have rotated the token.
    """

    refresh_token: str | None
    access_token: str | None = None
    access_expires_at: float | None = None
    access_ttl: float | None = None
    scope: str | None = None
    source: str = "config"
    salt: str = dataclasses.field(default_factory=lambda: secrets.token_hex(16))
    known_config_fingerprints: list[str] = dataclasses.field(default_factory=list)
    refresh_started_at: float | None = None
    refresh_started_fingerprint: str | None = None
    updated_at: float = dataclasses.field(default_factory=time.time)
    version: int = 0
    # The athlete's registry entry (never a secret; no email: the warehouse has the profile).
    first_name: str | None = None
    last_name: str | None = None
    enrolled_at: float | None = None
    last_synced_at: float | None = None
    status: str = "ok"
    status_reason: str | None = None  # one line: why, and the fix
    status_at: float | None = None

    def __repr__(self) -> str:
        return (
            f"TokenRecord(refresh_token={'<redacted>' if self.refresh_token else None}, "
            f"access_token={'<redacted>' if self.access_token else None}, "
            f"access_expires_at={self.access_expires_at}, source={self.source!r}, version={self.version}, "
            f"refresh_started_at={self.refresh_started_at})"
        )

    __str__ = __repr__

    def fingerprint(self, token: str) -> str:
        return fingerprint(self.salt, token)

    def knows_config_token(self, token: str) -> bool:
        return self.fingerprint(token) in self.known_config_fingerprints

    def remember_config_token(self, token: str) -> None:
        fp = self.fingerprint(token)
        if fp not in self.known_config_fingerprints:
            self.known_config_fingerprints = [*self.known_config_fingerprints, fp][-KNOWN_FINGERPRINTS:]

    @property
    def name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)

    def with_status(self, status: str, reason: str | None = None) -> TokenRecord:
        return dataclasses.replace(self, status=status, status_reason=reason, status_at=time.time())

    def access_token_valid(self, margin: float) -> bool:
        """True while the access token has more than `margin` seconds (at most a tenth of its life) left."""
        if not self.access_token or self.access_expires_at is None:
            return False
        if self.access_ttl:
            margin = min(margin, self.access_ttl / 10)
        return self.access_expires_at - margin > time.time()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


class TokenTransaction:
    """The inside of `TokenStore.transaction`: the current record, and `save`, `delete` or `move` for it."""

    def __init__(self, store: TokenStore, key: TokenKey, record: TokenRecord | None):
        self.store, self.key, self.record = store, key, record

    def save(self, record: TokenRecord) -> bool:
        """Persist `record` (atomically, durably) as the successor of `self.record`.

        False only for the SQL store when another writer replaced the refresh token meanwhile (say,
        `tap-whoop auth` after our lease expired): theirs is kept and the caller's record is not stored.
        """
        record.version = (self.record.version if self.record else 0) + 1
        record.updated_at = time.time()
        if not self.store._save(self, record):
            return False
        self.record = record
        return True

    def delete(self) -> None:
        """Forget this key's record (its tokens are gone for good)."""
        if self.record is not None:
            self.store._delete(self)
        self.record = None

    def move(self, athlete: str, record: TokenRecord) -> None:
        """Atomically store `record` under `athlete` (replacing what is there) and remove this key.

        How a pending slot becomes an enrolled athlete: no instant exists at which the live refresh token is
        in neither place, nor in both.
        """
        target = TokenKey(self.key.client_id, athlete)
        if target == self.key:
            self.save(record)
            return
        record.updated_at = time.time()
        self.store._move(self, target, record)
        self.record = None


class TokenStore(ABC):
    """Where tokens live between runs; see the module docstring for the guarantees."""

    location: str  # for messages: a path or a URL without password, never a token

    @abstractmethod
    def load(self, key: TokenKey) -> TokenRecord | None:
        """A consistent snapshot of the record, without locking (for the fast path)."""

    @abstractmethod
    def transaction(self, key: TokenKey) -> contextlib.AbstractContextManager[TokenTransaction]:
        """Exclusive across threads and processes until the block ends; the record is re-read inside."""

    @abstractmethod
    def records(self, client_id: str) -> dict[str, TokenRecord]:
        """Every record of one WHOOP app by athlete key, as a snapshot without locking."""

    @abstractmethod
    def _save(self, txn: TokenTransaction, record: TokenRecord) -> bool: ...

    @abstractmethod
    def _delete(self, txn: TokenTransaction) -> None: ...

    @abstractmethod
    def _move(self, txn: TokenTransaction, target: TokenKey, record: TokenRecord) -> None: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r})"
