"""The SQL token store: one table in any SQLAlchemy database, for workers without a durable disk.

SQLite, DuckDB (duckdb-engine), PostgreSQL (psycopg) and Snowflake (snowflake-sqlalchemy) are tested. Mutual
exclusion is a lease claimed by compare-and-swap on a `version` column; a lease whose owner died on this host,
or whose time ran out, is taken over.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from tap_whoop import crash_points
from tap_whoop.errors import TokenStoreError
from tap_whoop.stores.sql_database import SqlDatabase
from tap_whoop.stores.tokens.record import (
    LOCK_TIMEOUT_SECONDS,
    TokenKey,
    TokenRecord,
    TokenStore,
    TokenTransaction,
)

if TYPE_CHECKING:
    from sqlalchemy import Connection

logger = logging.getLogger("tap-whoop")

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


class _SqlTransaction(TokenTransaction):
    """A transaction that also holds its connection and the row version our lease owns."""

    def __init__(
        self,
        store: SqlTokenStore,
        key: TokenKey,
        record: TokenRecord | None,
        conn: Connection,
        row_version: int,
    ):
        super().__init__(store, key, record)
        self.conn, self.row_version = conn, row_version


class SqlTokenStore(TokenStore):
    """Table `tap_whoop_tokens` (client_id, athlete, version, payload JSON, lease_owner, lease_until)."""

    def __init__(self, url: str):
        import sqlalchemy as sa

        self.database = SqlDatabase(url, "the token store", TokenStoreError)
        self.url, self.location = self.database.url, self.database.location
        self.engine = self.database.engine
        self.table = sa.Table(
            TABLE_NAME,
            self.database.metadata,
            sa.Column("client_id", sa.String(200), primary_key=True),
            sa.Column("athlete", sa.String(200), primary_key=True),
            sa.Column("version", sa.Integer, nullable=False),
            sa.Column("payload", sa.Text),
            sa.Column("lease_owner", sa.String(300)),
            sa.Column("lease_until", sa.Float),
        )
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._thread_lock = threading.RLock()

    def _connect(self) -> contextlib.AbstractContextManager[Connection]:
        return self.database.connect(LEASE_POLL_SECONDS)

    def _where(self, key: TokenKey) -> Any:
        return (self.table.c.client_id == key.client_id) & (self.table.c.athlete == key.athlete)

    def _row(self, conn: Connection, key: TokenKey) -> Any:
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

    def records(self, client_id: str) -> dict[str, TokenRecord]:
        import sqlalchemy as sa

        with self._connect() as conn:
            query = sa.select(self.table).where(self.table.c.client_id == client_id)
            rows = conn.execute(query.order_by(self.table.c.version)).all()
            conn.commit()
        # Ordered by version, so of duplicate rows (Snowflake, see `_row`) the newest wins.
        found = {row.athlete: self._record(row) for row in rows}
        return {athlete: record for athlete, record in found.items() if record is not None}

    def _cas(self, conn: Connection, key: TokenKey, expected: int, **values: Any) -> bool:
        import sqlalchemy as sa

        result = conn.execute(
            sa.update(self.table)
            .where(self._where(key) & (self.table.c.version == expected))
            .values(**values)
        )
        conn.commit()
        return result.rowcount > 0

    def _claim(self, conn: Connection, key: TokenKey) -> int:
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
                return int(row.version) + 1
            if time.monotonic() > deadline:
                msg = f"Timed out after {LOCK_TIMEOUT_SECONDS:.0f}s waiting for the token store lease"
                raise TokenStoreError(f"{msg} in {self.location}")
            time.sleep(LEASE_POLL_SECONDS)

    @contextlib.contextmanager
    def transaction(self, key: TokenKey) -> Iterator[TokenTransaction]:
        from sqlalchemy.exc import SQLAlchemyError

        with self._thread_lock, self._connect() as conn:
            version = self._claim(conn, key)
            crash_points.reach("locked")
            record = self._record(self._row(conn, key))
            txn = _SqlTransaction(self, key, record, conn, version)
            try:
                yield txn
            finally:
                # Release only a lease that is still ours (the version moves with every write we make). If
                # this fails the lease simply runs out after LEASE_SECONDS.
                with contextlib.suppress(SQLAlchemyError):
                    self._cas(conn, key, txn.row_version, lease_owner=None, lease_until=None)

    def _delete(self, txn: TokenTransaction) -> None:
        import sqlalchemy as sa

        if not isinstance(txn, _SqlTransaction):
            raise TypeError(f"{self!r} deletes only in its own transactions, not {txn!r}")
        conn, version = txn.conn, txn.row_version
        where = self._where(txn.key) & (self.table.c.version == version)
        if conn.execute(sa.delete(self.table).where(where)).rowcount == 0:
            conn.rollback()
            raise TokenStoreError(f"Lost the token store lease in {self.location} before the delete")
        conn.commit()

    def _move(self, txn: TokenTransaction, target: TokenKey, record: TokenRecord) -> None:
        """Claim the target's lease, then update it and delete the source in one database transaction."""
        import sqlalchemy as sa

        if not isinstance(txn, _SqlTransaction):
            raise TypeError(f"{self!r} moves only in its own transactions, not {txn!r}")
        conn, version = txn.conn, txn.row_version
        target_version = self._claim(conn, target)
        payload = record.to_dict()
        payload.pop("version")
        moved = conn.execute(
            sa.update(self.table)
            .where(self._where(target) & (self.table.c.version == target_version))
            .values(
                version=target_version + 1,
                payload=json.dumps(payload, sort_keys=True),
                lease_owner=None,
                lease_until=None,
            )
        )
        removed = conn.execute(
            sa.delete(self.table).where(self._where(txn.key) & (self.table.c.version == version))
        )
        if moved.rowcount == 0 or removed.rowcount == 0:
            conn.rollback()
            with contextlib.suppress(Exception):
                self._cas(conn, target, target_version, lease_owner=None, lease_until=None)
            raise TokenStoreError(f"Lost the token store lease in {self.location} while moving a record")
        conn.commit()
        record.version = target_version + 1

    def _save(self, txn: TokenTransaction, record: TokenRecord) -> bool:
        if not isinstance(txn, _SqlTransaction):
            raise TypeError(f"{self!r} saves only its own transactions, not {txn!r}")
        conn, version = txn.conn, txn.row_version
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
        txn.row_version = version + 1
        record.version = version + 1
        return True
