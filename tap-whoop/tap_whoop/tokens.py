"""Durable token stores: where WHOOP's rotating refresh token lives between runs.

WHOOP rotates the refresh token on every refresh and the old one dies at once, so the store is the only copy
of a live credential. Two backends share one contract (`TokenStore.transaction`): an exclusive, cross-process
critical section in which the caller reads the current record and saves its successor atomically and durably.

* `FileTokenStore` (default): one JSON file, mode 0600, guarded by an OS file lock (released by the kernel
  when a process dies, so a crash never leaves a stale lock). Writes go to a temp file in the same directory,
  fsync, `os.replace`, fsync of the directory. A temp file that a killed process left complete is adopted on
  the next read when it is newer, which closes the window between "written" and "renamed".
* `SqlTokenStore`: one table in any SQLAlchemy database (SQLite, DuckDB via duckdb-engine, Snowflake via
  snowflake-sqlalchemy) for workers without a durable disk. Mutual exclusion is a lease claimed by
  compare-and-swap on a `version` column; a lease whose owner died on this host, or whose time ran out, is
  taken over.

Records are keyed by `TokenKey(client_id, athlete)`. Today the tap uses the athlete key "default"; a
multi-athlete tap stores one record per athlete (e.g. by WHOOP user_id) in the same file or table.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import json
import logging
import os
import secrets
import socket
import tempfile
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DEFAULT_ATHLETE = "default"
FILE_FORMAT = 1
# How many config-token fingerprints a record remembers (config tokens that must never re-seed the store).
KNOWN_FINGERPRINTS = 20
LOCK_TIMEOUT_SECONDS = 180.0

logger = logging.getLogger("tap-whoop")


def checkpoint(step: str) -> None:
    """A named step of a token refresh: a no-op that the crash-safety tests replace to kill the process."""


class TokenStoreError(Exception):
    """The token store cannot be read or written (never carries a token)."""


def default_token_store() -> str:
    """Per-user state file, following the XDG base-directory convention."""
    state_home = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state_home, "tap-whoop", "tokens.json")


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
    """The inside of `TokenStore.transaction`: the current record, and `save` for its successor."""

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
    def _save(self, txn: TokenTransaction, record: TokenRecord) -> bool: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r})"


def open_token_store(setting: str | None) -> TokenStore:
    """The store named by the `token_store` setting: a SQLAlchemy URL (has `://`) or a file path."""
    value = (setting or "").strip() or default_token_store()
    if "://" in value:
        return SqlTokenStore(value)
    return FileTokenStore(value)


# ----------------------------------------------------------------------------------------------------
# File store
# ----------------------------------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    """Make a rename durable (POSIX; Windows cannot open a directory and commits renames itself)."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileTokenStore(TokenStore):
    """A JSON file `{"format": 1, "tokens": {"<client_id>/<athlete>": record}}`, mode 0600."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path).expanduser().absolute()
        self.location = str(self.path)
        self._thread_lock = threading.RLock()

    @property
    def _lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def _temp_files(self) -> list[Path]:
        return sorted(self.path.parent.glob(f".{self.path.name}.*.tmp"))

    def _read_document(self, path: Path) -> dict[str, Any]:
        with path.open(encoding="utf-8") as fh:
            document = json.load(fh)
        if not isinstance(document, dict) or document.get("format") != FILE_FORMAT:
            raise ValueError("unknown format")
        return document

    def _read(self) -> dict[str, Any]:
        try:
            return self._read_document(self.path)
        except FileNotFoundError:
            return {"format": FILE_FORMAT, "tokens": {}}
        except (OSError, ValueError) as exc:
            msg = (
                f"The token store {self.location} is unreadable or corrupt ({type(exc).__name__}). "
                "Move it aside and run `tap-whoop auth` to authorize again."
            )
            raise TokenStoreError(msg) from None

    def load(self, key: TokenKey) -> TokenRecord | None:
        data = self._read()["tokens"].get(key.id)
        return TokenRecord.from_dict(data) if data else None

    @contextlib.contextmanager
    def transaction(self, key: TokenKey) -> Iterator[TokenTransaction]:
        from filelock import FileLock, Timeout

        self._ensure_dir()
        lock = FileLock(str(self._lock_path), mode=0o600, thread_local=False)
        with self._thread_lock:
            try:
                lock.acquire(timeout=LOCK_TIMEOUT_SECONDS)
            except Timeout:
                waited = f"{LOCK_TIMEOUT_SECONDS:.0f}s"
                msg = f"Timed out after {waited} waiting for the token store lock {lock.lock_file}"
                raise TokenStoreError(msg) from None
            try:
                checkpoint("locked")
                self._recover_temp_files()
                yield TokenTransaction(self, key, self.load(key))
            finally:
                lock.release()

    def _ensure_dir(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _recover_temp_files(self) -> None:
        """Adopt a complete temp file that a killed writer left behind if it is newer; drop the rest.

        Runs under the lock, so no live writer owns a temp file. "Newer" is per key: the temp file is a whole
        document written from the then-current file plus one changed record.
        """
        temps = self._temp_files()
        if not temps:
            return
        current = self._read()
        for temp in temps:
            try:
                candidate = self._read_document(temp)
            except (OSError, ValueError):
                candidate = None
            if candidate is not None and _newer(candidate["tokens"], current["tokens"]):
                logger.warning(
                    "Token store %s: recovered tokens saved by an interrupted run before it could finish.",
                    self.location,
                )
                os.replace(temp, self.path)
                _fsync_dir(self.path.parent)
                current = candidate
            else:
                temp.unlink(missing_ok=True)

    def _save(self, txn: TokenTransaction, record: TokenRecord) -> bool:
        document = self._read()
        document["tokens"][txn.key.id] = record.to_dict()
        self._write(document)
        return True

    def _write(self, document: dict[str, Any]) -> None:
        fd, temp_name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            # mkstemp creates the file 0600: the secret is never readable by others, not even briefly.
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(document, fh, indent=2, sort_keys=True)
                fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())
            checkpoint("temp_written")
            os.replace(temp_name, self.path)
            checkpoint("replaced")
            _fsync_dir(self.path.parent)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp_name)
            raise


def _newer(candidate: dict[str, Any], current: dict[str, Any]) -> bool:
    return any(
        record.get("version", 0) > current.get(key, {}).get("version", 0) for key, record in candidate.items()
    )


# ----------------------------------------------------------------------------------------------------
# SQL store
# ----------------------------------------------------------------------------------------------------

TABLE_NAME = "tap_whoop_tokens"
LEASE_SECONDS = 120.0
LEASE_POLL_SECONDS = 0.2


def _owner_alive(owner: str | None) -> bool:
    """Whether a lease owner ("host:pid:nonce") still runs; owners on other hosts are presumed alive."""
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    # Signal 0 probes a pid on POSIX only (on Windows os.kill would terminate or interrupt the process).
    if host != socket.gethostname() or not pid_text.isdigit() or os.name != "posix":
        return True
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SqlTokenStore(TokenStore):
    """Table `tap_whoop_tokens` (client_id, athlete, version, payload JSON, lease_owner, lease_until)."""

    def __init__(self, url: str):
        import sqlalchemy as sa
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        try:
            self.url = sa.make_url(url)
        except ArgumentError:
            raise TokenStoreError("token_store is not a valid SQLAlchemy URL (dialect://...)") from None
        self.location = self.url.render_as_string(hide_password=True)
        self._local_file = self._prepare_local_file()
        try:
            # NullPool: a connection lives only as long as one operation, so a DuckDB file (one writer
            # process at a time) is never held between operations.
            self.engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
        except (NoSuchModuleError, ImportError) as exc:
            extra = {"duckdb": "duckdb", "snowflake": "snowflake"}.get(self.url.get_backend_name())
            hint = f" Install it with `pip install 'tap-whoop[{extra}]'`." if extra else ""
            msg = f"No SQLAlchemy driver for the token store {self.location} ({exc}).{hint}"
            raise TokenStoreError(msg) from None
        self.metadata = sa.MetaData()
        self.table = sa.Table(
            TABLE_NAME,
            self.metadata,
            sa.Column("client_id", sa.String(200), primary_key=True),
            sa.Column("athlete", sa.String(200), primary_key=True),
            sa.Column("version", sa.Integer, nullable=False),
            sa.Column("payload", sa.Text),
            sa.Column("lease_owner", sa.String(300)),
            sa.Column("lease_until", sa.Float),
        )
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._thread_lock = threading.RLock()
        self._created = False

    def _prepare_local_file(self) -> Path | None:
        """SQLite/DuckDB files: create the directory; the file itself is made 0600 once it exists."""
        if self.url.get_backend_name() not in {"sqlite", "duckdb"}:
            return None
        database = self.url.database
        if not database or database == ":memory:" or database.startswith("md:"):
            return None
        path = Path(database).expanduser().absolute()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    @contextlib.contextmanager
    def _connect(self) -> Iterator[Any]:
        """A connection; DuckDB allows one writing process per file, so opening is retried while busy."""
        from sqlalchemy.exc import DBAPIError

        deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
        while True:
            try:
                conn = self.engine.connect()
                break
            except DBAPIError as exc:
                busy = "lock" in str(exc.orig).lower()
                if not busy or time.monotonic() > deadline:
                    msg = f"Cannot open the token store {self.location}: {type(exc.orig).__name__}"
                    raise TokenStoreError(msg) from None
                time.sleep(LEASE_POLL_SECONDS)
        try:
            self._ensure_table(conn)
            yield conn
        finally:
            conn.close()

    def _ensure_table(self, conn: Any) -> None:
        if self._created:
            return
        from sqlalchemy.exc import DBAPIError

        try:
            self.metadata.create_all(conn, checkfirst=True)
            conn.commit()
        except DBAPIError:
            conn.rollback()  # another process created it between our check and our CREATE
        if self._local_file is not None and self._local_file.exists():
            os.chmod(self._local_file, 0o600)
        self._created = True

    def _where(self, key: TokenKey) -> Any:
        return (self.table.c.client_id == key.client_id) & (self.table.c.athlete == key.athlete)

    def _row(self, conn: Any, key: TokenKey) -> Any:
        import sqlalchemy as sa

        # Snowflake does not enforce primary keys: should two seeding runs both insert, the rows are
        # identical and every compare-and-swap updates them together, so the highest version is the truth.
        query = sa.select(self.table).where(self._where(key)).order_by(self.table.c.version.desc()).limit(1)
        row = conn.execute(query).first()
        conn.commit()
        return row

    @staticmethod
    def _record(row: Any) -> TokenRecord | None:
        if row is None or row.payload is None:
            return None
        record = TokenRecord.from_dict(json.loads(row.payload))
        record.version = row.version
        return record

    def load(self, key: TokenKey) -> TokenRecord | None:
        with self._connect() as conn:
            return self._record(self._row(conn, key))

    def _cas(self, conn: Any, key: TokenKey, expected: int, **values: Any) -> bool:
        import sqlalchemy as sa

        result = conn.execute(
            sa.update(self.table)
            .where(self._where(key) & (self.table.c.version == expected))
            .values(**values)
        )
        conn.commit()
        return result.rowcount > 0

    def _claim(self, conn: Any, key: TokenKey) -> int:
        """Take the lease for `key`; returns the row version we then own."""
        import sqlalchemy as sa
        from sqlalchemy.exc import IntegrityError

        deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
        while True:
            row = self._row(conn, key)
            if row is None:
                try:
                    conn.execute(
                        sa.insert(self.table).values(client_id=key.client_id, athlete=key.athlete, version=0)
                    )
                    conn.commit()
                except IntegrityError:
                    conn.rollback()
                continue
            free = row.lease_owner is None or (row.lease_until or 0) < time.time()
            if not free and not _owner_alive(row.lease_owner):
                logger.warning("Token store %s: taking over the lease of a run that died.", self.location)
                free = True
            if free and self._cas(
                conn,
                key,
                row.version,
                version=row.version + 1,
                lease_owner=self._owner,
                lease_until=time.time() + LEASE_SECONDS,
            ):
                return row.version + 1
            if time.monotonic() > deadline:
                msg = f"Timed out after {LOCK_TIMEOUT_SECONDS:.0f}s waiting for the token store lease"
                raise TokenStoreError(f"{msg} in {self.location}")
            time.sleep(LEASE_POLL_SECONDS)

    @contextlib.contextmanager
    def transaction(self, key: TokenKey) -> Iterator[TokenTransaction]:
        from sqlalchemy.exc import SQLAlchemyError

        with self._thread_lock, self._connect() as conn:
            version = self._claim(conn, key)
            checkpoint("locked")
            record = self._record(self._row(conn, key))
            txn = TokenTransaction(self, key, record)
            txn._conn, txn._row_version = conn, version  # type: ignore[attr-defined]
            try:
                yield txn
            finally:
                # Release only a lease that is still ours (the version moves with every write we make). If
                # this fails the lease simply runs out after LEASE_SECONDS.
                with contextlib.suppress(SQLAlchemyError):
                    self._cas(conn, key, txn._row_version, lease_owner=None, lease_until=None)  # type: ignore[attr-defined]

    def _save(self, txn: TokenTransaction, record: TokenRecord) -> bool:
        conn, version = txn._conn, txn._row_version  # type: ignore[attr-defined]
        payload = record.to_dict()
        payload.pop("version")
        values = {"payload": json.dumps(payload, sort_keys=True), "lease_owner": self._owner}
        while not self._cas(conn, txn.key, version, version=version + 1, **values):
            # Our lease was taken over (it outlived LEASE_SECONDS). Saving is still right while the stored
            # refresh token is the one we started from: ours is then its only live successor.
            current = self._record(row := self._row(conn, txn.key))
            previous = txn.record.refresh_token if txn.record else None
            if row is None or (current.refresh_token if current else None) != previous:
                return False
            version = row.version
        txn._row_version = version + 1  # type: ignore[attr-defined]
        record.version = version + 1
        return True
