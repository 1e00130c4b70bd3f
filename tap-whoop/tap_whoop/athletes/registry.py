"""The athlete registry of one WHOOP app, over the token store: enroll, adopt, list, status, remove.

An athlete is a token-store record keyed by their WHOOP user_id. Tokens of an athlete not yet known (the one
athlete of a store written before athletes were keyed, a `refresh_token` setting, an import in progress) sit
in a *pending* slot; `adopt_pending` learns whose they are from one profile call and moves them to that
user_id in one atomic store operation, without spending a refresh of its own (the slot's access token is
reused while valid). Every path that brings in new tokens (`tap-whoop auth`, `athletes add`, the enrollment
service) parks them in a pending slot first, so a crash never loses a freshly issued refresh token.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import secrets
import time
import typing as t

from tap_whoop import whoop
from tap_whoop.auth.authenticator import WhoopAuthenticator
from tap_whoop.auth.token_response import record_from_token_response
from tap_whoop.client.api import WhoopClient
from tap_whoop.errors import Failure, WhoopAPIError, WhoopAuthError
from tap_whoop.stores import open_token_store
from tap_whoop.stores.tokens.record import (
    DEFAULT_ATHLETE,
    PENDING_PREFIX,
    TokenKey,
    TokenRecord,
    TokenStore,
)

if t.TYPE_CHECKING:
    from collections.abc import Mapping

# Registry statuses: an athlete-level failure's kind is also the status it leaves the athlete in.
OK = "ok"
NEEDS_REAUTHORIZATION = Failure.NEEDS_REAUTHORIZATION.value  # the tokens no longer work
REVOKED = Failure.REVOKED.value  # the authorization was withdrawn (at WHOOP, or `athletes remove --revoke`)
DEACTIVATED = Failure.DEACTIVATED.value  # WHOOP answers 403 deactivated_user; retried every run
REMOVED = "removed"  # `athletes remove`: tokens forgotten, warehouse rows kept
STATUSES = (OK, NEEDS_REAUTHORIZATION, REVOKED, DEACTIVATED, REMOVED)
SYNCABLE = (OK, DEACTIVATED)


@dataclasses.dataclass(frozen=True)
class Athlete:
    """One athlete as `athletes list` shows them: never a token."""

    user_id: int
    name: str
    enrolled_at: float | None
    last_synced_at: float | None
    status: str
    status_reason: str | None

    @classmethod
    def from_record(cls, user_id: int, record: TokenRecord) -> Athlete:
        return cls(
            user_id,
            record.name,
            record.enrolled_at,
            record.last_synced_at,
            record.status,
            record.status_reason,
        )

    def as_json(self) -> dict[str, t.Any]:
        return {
            "user_id": self.user_id,
            "name": self.name or None,
            "enrolled_at": _iso(self.enrolled_at),
            "last_synced_at": _iso(self.last_synced_at),
            "status": self.status,
            "status_reason": self.status_reason,
        }


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def fetch_profile(client: WhoopClient, authenticator: WhoopAuthenticator) -> dict[str, t.Any]:
    """The basic profile of the athlete whose tokens `authenticator` holds (their user_id and name)."""
    response = client.request("GET", whoop.PROFILE_PATH, authenticator)
    try:
        profile = response.json()
        int(profile["user_id"])
    except (ValueError, KeyError, TypeError):
        profile = None
    if not isinstance(profile, dict):
        raise WhoopAPIError(f"GET {whoop.PROFILE_PATH} returned no user_id; try again later")
    return profile


class AthleteRegistry:
    """The athletes of the WHOOP app `config` names, in its token store. One per run or command."""

    def __init__(
        self,
        config: Mapping[str, t.Any],
        logger: logging.Logger | None = None,
        *,
        store: TokenStore | None = None,
        client: WhoopClient | None = None,
    ):
        """`client` is the run's WHOOP client (sharing its pacer); a command without one gets its own."""
        self.config = config
        self.logger = logger or logging.getLogger("tap-whoop")
        self.client_id = str(config["client_id"])
        self.client = client or WhoopClient.for_config(config)
        self.store = store or open_token_store(config.get("token_store"))
        self._authenticators: dict[int, WhoopAuthenticator] = {}
        self.adoption_failures: list[str] = []
        self._adopted = False
        # Profiles fetched while adopting or enrolling in this run: the profile stream needs no call for them.
        self.fresh_profiles: dict[int, dict[str, t.Any]] = {}

    def key(self, user_id: int) -> TokenKey:
        return TokenKey(self.client_id, str(user_id))

    # -- reading
    # ----------------------------------------------------------------------------------------

    def athletes(self) -> list[Athlete]:
        """Every athlete the store knows for this app (any status), by user_id."""
        found = []
        for athlete, record in self.store.records(self.client_id).items():
            user_id = TokenKey(self.client_id, athlete).user_id
            if user_id is not None:
                found.append(Athlete.from_record(user_id, record))
        return sorted(found, key=lambda a: a.user_id)

    def get(self, user_id: int) -> Athlete | None:
        record = self.store.load(self.key(user_id))
        return Athlete.from_record(user_id, record) if record else None

    def authenticator(self, user_id: int) -> WhoopAuthenticator:
        """The (cached) authenticator of one enrolled athlete; it never reads the refresh_token setting."""
        if user_id not in self._authenticators:
            self._authenticators[user_id] = WhoopAuthenticator(
                self.config,
                self.logger,
                str(user_id),
                store=self.store,
                use_config_token=False,
                client=self.client,
            )
        return self._authenticators[user_id]

    # -- status
    # ----------------------------------------------------------------------------------------

    def set_status(self, user_id: int, status: str, reason: str | None = None) -> None:
        with self.store.transaction(self.key(user_id)) as txn:
            if txn.record is not None and (txn.record.status, txn.record.status_reason) != (status, reason):
                txn.save(txn.record.with_status(status, reason))

    def mark_synced(self, user_id: int, at: float | None = None) -> None:
        with self.store.transaction(self.key(user_id)) as txn:
            if txn.record is None:
                return
            record = dataclasses.replace(txn.record, last_synced_at=at or time.time())
            if record.status != OK:
                record = record.with_status(OK)
            txn.save(record)

    # -- bringing athletes in
    # ----------------------------------------------------------------------------------------

    def _config_token_known(self, records: Mapping[str, TokenRecord]) -> bool:
        token = self.config.get("refresh_token")
        return not token or any(
            r.refresh_token == token or r.knows_config_token(str(token)) for r in records.values()
        )

    def pending_slots(self) -> list[str]:
        """Pending slots to adopt: those in the store, plus `default` for a refresh_token setting it lacks."""
        records = self.store.records(self.client_id)
        slots = [
            athlete
            for athlete, record in records.items()
            if TokenKey(self.client_id, athlete).user_id is None
            and (record.refresh_token or record.access_token)
            and record.status == OK
        ]
        if DEFAULT_ATHLETE not in slots and not self._config_token_known(records):
            slots.append(DEFAULT_ATHLETE)
        return sorted(slots)

    def adopt_pending(self) -> list[int]:
        """Adopt every pending slot under its athlete's user_id (once per registry); returns the user_ids.

        A slot whose tokens WHOOP refuses is marked and left (the message says what to do); the others and
        the enrolled athletes are unaffected. App-level failures (credentials, the store) propagate.
        """
        if self._adopted:
            return []  # once per run (or command): a failed slot is not knocked on twice
        self._adopted = True
        adopted = []
        records = self.store.records(self.client_id)
        config_token_new = not self._config_token_known(records)
        for slot in self.pending_slots():
            try:
                user_id = self.adopt(slot, use_config_token=config_token_new and slot == DEFAULT_ATHLETE)
            except WhoopAPIError as exc:
                if exc.kind is Failure.APP:
                    raise
                where = "the refresh_token setting" if slot == DEFAULT_ATHLETE else f"pending tokens ({slot})"
                self.logger.warning("Could not enroll the athlete of %s: %s", where, exc)
                self.adoption_failures.append(str(exc))
                if exc.kind.athlete_level:
                    self._retire_slot(slot, exc.kind, str(exc))
                continue
            if user_id is not None:
                adopted.append(user_id)
        return adopted

    def adopt(self, slot: str, *, use_config_token: bool = False) -> int | None:
        """Move one pending slot's tokens to its athlete's user_id (one profile call); returns the user_id."""
        authenticator = WhoopAuthenticator(
            self.config,
            self.logger,
            slot,
            store=self.store,
            use_config_token=use_config_token,
            client=self.client,
        )
        profile = fetch_profile(self.client, authenticator)
        user_id = int(profile["user_id"])
        slot_key = TokenKey(self.client_id, slot)
        with self.store.transaction(slot_key) as txn:
            if txn.record is None:
                return None  # another run adopted it meanwhile
            existing = self.store.load(self.key(user_id))
            record = self._merge(txn.record, existing, profile)
            txn.move(str(user_id), record)
        self.fresh_profiles[user_id] = profile
        self._authenticators.pop(user_id, None)
        again = " (re-authorized)" if existing is not None and existing.status != REMOVED else ""
        self.logger.info("Athlete %s enrolled%s from %s.", user_id, again, _slot_origin(slot))
        return user_id

    def _merge(
        self, incoming: TokenRecord, existing: TokenRecord | None, profile: Mapping[str, t.Any]
    ) -> TokenRecord:
        """The incoming (working) tokens, with the athlete's registry entry carried over."""
        record = dataclasses.replace(
            incoming,
            first_name=profile.get("first_name"),
            last_name=profile.get("last_name"),
            enrolled_at=(existing.enrolled_at if existing and existing.status != REMOVED else None)
            or incoming.enrolled_at
            or time.time(),
            last_synced_at=existing.last_synced_at if existing else incoming.last_synced_at,
        ).with_status(OK)
        token = self.config.get("refresh_token")
        if token and existing is not None and existing.knows_config_token(str(token)):
            record.remember_config_token(str(token))  # stays stale: it must not re-seed the store
        return record

    def _retire_slot(self, slot: str, kind: Failure, reason: str) -> None:
        """A pending slot whose tokens are dead: keep it only as a marker so it is not retried every run."""
        with self.store.transaction(TokenKey(self.client_id, slot)) as txn:
            base = txn.record or TokenRecord(None)
            token = self.config.get("refresh_token")
            if slot == DEFAULT_ATHLETE and token:
                base.remember_config_token(str(token))
            txn.save(
                dataclasses.replace(base, refresh_token=None, access_token=None).with_status(
                    kind.value if kind.value in STATUSES else NEEDS_REAUTHORIZATION, reason
                )
            )

    def park_tokens(self, body: Mapping[str, t.Any], source: str) -> str:
        """Save a token response (authorization code, import) in a new pending slot; returns the slot."""
        slot = f"{PENDING_PREFIX}{secrets.token_hex(6)}"
        with self.store.transaction(TokenKey(self.client_id, slot)) as txn:
            record = record_from_token_response(TokenRecord(None), body, None, source=source)
            token = self.config.get("refresh_token")
            if token:
                # The refresh_token setting predates this authorization: it must not override it later.
                record.remember_config_token(str(token))
            record.enrolled_at = time.time()
            txn.save(record)
        return slot

    def enroll(self, body: Mapping[str, t.Any], source: str) -> tuple[int, dict[str, t.Any]]:
        """Store the tokens of a new authorization under its athlete; returns (user_id, profile)."""
        slot = self.park_tokens(body, source)
        user_id = self.adopt(slot)
        if user_id is None:  # a concurrent run adopted the slot first
            raise WhoopAPIError("the new tokens were enrolled by a concurrent run; check `athletes list`")
        return user_id, self.fresh_profiles[user_id]

    def import_refresh_token(self, refresh_token: str) -> tuple[int, dict[str, t.Any]]:
        """`athletes add`: a refresh token from elsewhere, refreshed once (it rotates) and enrolled."""
        slot = f"{PENDING_PREFIX}{secrets.token_hex(6)}"
        with self.store.transaction(TokenKey(self.client_id, slot)) as txn:
            txn.save(TokenRecord(refresh_token, source="import", enrolled_at=time.time()))
        try:
            user_id = self.adopt(slot)
        except WhoopAuthError as exc:
            if exc.kind is not Failure.TRANSIENT:
                with self.store.transaction(TokenKey(self.client_id, slot)) as txn:
                    txn.delete()  # WHOOP refused the token: nothing was rotated, nothing worth keeping
            raise
        # Any other failure leaves the slot: it may hold the rotated token, which the next run adopts.
        if user_id is None:
            raise WhoopAPIError("the token was enrolled by a concurrent run; check `athletes list`")
        return user_id, self.fresh_profiles[user_id]

    # -- removing
    # ----------------------------------------------------------------------------------------

    def remove(self, user_id: int, *, revoke: bool) -> Athlete:
        """Forget an athlete's tokens (after `DELETE /v2/user/access` with `revoke`); a marker stays."""
        record = self.store.load(self.key(user_id))
        if record is None:
            raise KeyError(user_id)
        if revoke and record.status != REMOVED and (record.refresh_token or record.access_token):
            self.client.request("DELETE", whoop.REVOKE_PATH, self.authenticator(user_id))
        status = REVOKED if revoke else REMOVED
        reason = (
            "access revoked and tokens forgotten by `tap-whoop athletes remove --revoke`"
            if revoke
            else "tokens forgotten by `tap-whoop athletes remove`"
        )
        with self.store.transaction(self.key(user_id)) as txn:
            base = txn.record or record
            # Only what the warehouse's enrollment status needs stays: no tokens, no name.
            marker = TokenRecord(
                None,
                source="removed",
                enrolled_at=base.enrolled_at,
                last_synced_at=base.last_synced_at,
            ).with_status(status, reason)
            txn.save(marker)
        self._authenticators.pop(user_id, None)
        return Athlete.from_record(user_id, marker)


def _slot_origin(slot: str) -> str:
    if slot == DEFAULT_ATHLETE:
        return "the single-athlete tokens (a store written before athletes were keyed, or refresh_token)"
    return "newly issued tokens"


__all__ = [
    "DEACTIVATED",
    "NEEDS_REAUTHORIZATION",
    "OK",
    "REMOVED",
    "REVOKED",
    "STATUSES",
    "SYNCABLE",
    "Athlete",
    "AthleteRegistry",
    "fetch_profile",
]
