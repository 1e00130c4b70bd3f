"""The SQL event log: table `tap_whoop_events` in the database of the SQL token store (any SQLAlchemy URL).

One INSERT ... SELECT per event assigns `seq` (the table's highest plus one) and skips a trace_id already
stored, and commits before `append` returns. `seq` follows the order of commits as long as one process
writes (one `tap-whoop serve` per store, which is how WHOOP delivers: one webhook URL per app); that process
serialises its own appends. DuckDB files allow one writing process at a time, so opening is retried while the
tap has it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tap_whoop.errors import ensure_directory
from tap_whoop.events import WebhookEvent
from tap_whoop.stores.events import EventLog, EventLogError, StoredEvent
from tap_whoop.stores.record import LOCK_TIMEOUT_SECONDS

TABLE_NAME = "tap_whoop_events"
BUSY_POLL_SECONDS = 0.05


class SqlEventLog(EventLog):
    """Table `tap_whoop_events` (app, trace_id, seq, type, user_id, record_id, received_at_ms epoch)."""

    def __init__(self, url: str, app: str):
        import sqlalchemy as sa
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        try:
            self.url = sa.make_url(url)
        except ArgumentError:
            raise EventLogError("token_store is not a valid SQLAlchemy URL (dialect://...)") from None
        self.location = self.url.render_as_string(hide_password=True)
        self.app = app
        self._local_file = _local_database_file(self.url)
        try:
            # NullPool: a DuckDB file is held only for one operation, as the token store holds it.
            self.engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
        except (NoSuchModuleError, ImportError) as exc:
            raise EventLogError(f"No SQLAlchemy driver for the event log {self.location} ({exc}).") from None
        self.metadata = sa.MetaData()
        self.table = sa.Table(
            TABLE_NAME,
            self.metadata,
            sa.Column("app", sa.String(64), primary_key=True),
            sa.Column("trace_id", sa.String(200), primary_key=True),
            sa.Column("seq", sa.BigInteger, nullable=False),
            sa.Column("type", sa.String(40), nullable=False),
            sa.Column("user_id", sa.BigInteger, nullable=False),
            sa.Column("record_id", sa.String(200), nullable=False),
            # Epoch milliseconds: exact everywhere (a DuckDB FLOAT is 32-bit).
            sa.Column("received_at_ms", sa.BigInteger, nullable=False),
        )
        self._lock = threading.Lock()
        self._created = False

    @contextlib.contextmanager
    def _connect(self) -> Iterator[Any]:
        from sqlalchemy.exc import DBAPIError

        deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
        while True:
            try:
                conn = self.engine.connect()
                break
            except DBAPIError as exc:
                if "lock" not in str(exc.orig).lower() or time.monotonic() > deadline:
                    msg = f"Cannot open the event log {self.location}: {type(exc.orig).__name__}"
                    raise EventLogError(msg) from None
                time.sleep(BUSY_POLL_SECONDS)
        try:
            if not self._created:
                self._create_table(conn)
            yield conn
        except DBAPIError as exc:
            conn.rollback()
            raise EventLogError(f"The event log {self.location} failed: {type(exc.orig).__name__}") from None
        finally:
            conn.close()

    def _create_table(self, conn: Any) -> None:
        from sqlalchemy.exc import DBAPIError

        try:
            self.metadata.create_all(conn, checkfirst=True)
            conn.commit()
        except DBAPIError:
            conn.rollback()  # another process created it between our check and our CREATE
        if self._local_file is not None and self._local_file.exists():
            os.chmod(self._local_file, 0o600)
        self._created = True

    def prepare(self) -> None:
        with self._connect():  # creates the table
            pass

    def append(self, event: WebhookEvent, received_at: dt.datetime) -> bool:
        import sqlalchemy as sa
        from sqlalchemy.exc import IntegrityError

        table = self.table
        mine = (table.c.app == self.app) & (table.c.trace_id == event.trace_id)
        with self._lock, self._connect() as conn:
            if conn.execute(sa.select(table.c.seq).where(mine).limit(1)).first() is not None:
                conn.commit()
                return False
            following = sa.select((sa.func.coalesce(sa.func.max(table.c.seq), 0) + 1).label("seq")).subquery()
            row = sa.select(
                following.c.seq,
                sa.literal(self.app, sa.String),
                sa.literal(event.trace_id, sa.String),
                sa.literal(event.type, sa.String),
                sa.literal(event.user_id, sa.BigInteger),
                sa.literal(event.id, sa.String),
                sa.literal(_epoch_ms(received_at), sa.BigInteger),
            ).where(~sa.exists().where(mine))
            columns = ["seq", "app", "trace_id", "type", "user_id", "record_id", "received_at_ms"]
            try:
                conn.execute(sa.insert(table).from_select(columns, row))
                conn.commit()
            except IntegrityError:
                conn.rollback()  # another writer stored the same trace_id a moment ago
                return False
            return True

    def read(self, after: int = 0) -> list[StoredEvent]:
        import sqlalchemy as sa

        table = self.table
        query = (
            sa.select(table).where((table.c.app == self.app) & (table.c.seq > after)).order_by(table.c.seq)
        )
        with self._connect() as conn:
            rows = conn.execute(query).fetchall()
            conn.commit()
        seen: set[str] = set()
        events = []
        for row in rows:
            if row.trace_id in seen:  # Snowflake does not enforce the primary key
                continue
            seen.add(row.trace_id)
            event = WebhookEvent(int(row.user_id), str(row.record_id), str(row.type), str(row.trace_id))
            received_at = dt.datetime.fromtimestamp(row.received_at_ms / 1000, dt.UTC)
            events.append(StoredEvent(int(row.seq), received_at, event))
        return events

    def newest_seq(self) -> int:
        import sqlalchemy as sa

        with self._connect() as conn:
            newest = conn.execute(sa.select(sa.func.max(self.table.c.seq))).scalar()
            conn.commit()
        return int(newest or 0)

    def prune(self, before: dt.datetime) -> int:
        import sqlalchemy as sa

        table = self.table
        with self._lock, self._connect() as conn:
            newest = conn.execute(sa.select(sa.func.max(table.c.seq))).scalar()
            if newest is None:
                conn.commit()
                return 0
            result = conn.execute(
                sa.delete(table).where((table.c.received_at_ms < _epoch_ms(before)) & (table.c.seq < newest))
            )
            conn.commit()
            return max(result.rowcount or 0, 0)


def _epoch_ms(when: dt.datetime) -> int:
    return round(when.timestamp() * 1000)


def _local_database_file(url: Any) -> Path | None:
    """SQLite/DuckDB files: their directory is created; the file itself is made 0600 once it exists."""
    if url.get_backend_name() not in {"sqlite", "duckdb"}:
        return None
    database = url.database
    if not database or database == ":memory:" or database.startswith("md:"):
        return None
    path = Path(database).expanduser().absolute()
    ensure_directory(path.parent, "the webhook event log", EventLogError)
    return path
