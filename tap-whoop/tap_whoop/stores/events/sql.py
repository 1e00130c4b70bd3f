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
import threading
from collections.abc import Iterator
from typing import Any

from tap_whoop.deletions.events import WebhookEvent
from tap_whoop.stores.events.log import EventLog, EventLogError, StoredEvent
from tap_whoop.stores.sql_database import SqlDatabase

TABLE_NAME = "tap_whoop_events"
BUSY_POLL_SECONDS = 0.05


class SqlEventLog(EventLog):
    """Table `tap_whoop_events` (app, trace_id, seq, type, user_id, record_id, received_at_ms epoch)."""

    def __init__(self, url: str, app: str):
        import sqlalchemy as sa

        self.database = SqlDatabase(url, "the webhook event log", EventLogError)
        self.url, self.location = self.database.url, self.database.location
        self.app = app
        self.table = sa.Table(
            TABLE_NAME,
            self.database.metadata,
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

    @contextlib.contextmanager
    def _connect(self) -> Iterator[Any]:
        from sqlalchemy.exc import DBAPIError

        with self.database.connect(BUSY_POLL_SECONDS) as conn:
            try:
                yield conn
            except DBAPIError as exc:
                conn.rollback()
                raise EventLogError(
                    f"The event log {self.location} failed: {type(exc.orig).__name__}"
                ) from None

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
