"""The SQLAlchemy database a SQL store keeps its table in (the token store and, beside it, the event log).

Opening it (URL, driver, a local file's directory) fails in one line naming `token_store`. Connections last
one operation (NullPool), so a DuckDB file, which allows one writing process at a time, is never held between
operations; opening one is retried while another process holds the file. The store's table is created on
first use, and a local database file is made 0600 once it exists.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from tap_whoop.errors import WhoopUserError, ensure_directory
from tap_whoop.stores.tokens.record import LOCK_TIMEOUT_SECONDS

if TYPE_CHECKING:
    from sqlalchemy import Connection

# The extras of tap-whoop that bring a dialect's driver.
DRIVER_EXTRAS = {"duckdb": "duckdb", "postgresql": "postgres", "snowflake": "snowflake"}
# SQLAlchemy's default driver for a plain postgresql:// URL is psycopg2; the `postgres` extra brings psycopg
# 3, so a URL written as psql users write it (postgresql://user@host/db) works as it is.
DEFAULT_DRIVERS = {"postgresql": "postgresql+psycopg"}


class SqlDatabase:
    """One store's database: `what` names the store in messages, `error` is the store's error type."""

    def __init__(self, url: str, what: str, error: type[WhoopUserError]):
        import sqlalchemy as sa
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        self.what, self.error = what, error
        try:
            self.url = sa.make_url(url)
        except ArgumentError:
            raise error("token_store is not a valid SQLAlchemy URL (dialect://...)") from None
        if self.url.drivername in DEFAULT_DRIVERS:
            self.url = self.url.set(drivername=DEFAULT_DRIVERS[self.url.drivername])
        self.location = self.url.render_as_string(hide_password=True)
        self.local_file = self._prepare_local_file()
        try:
            self.engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
        except (NoSuchModuleError, ImportError) as exc:
            extra = DRIVER_EXTRAS.get(self.url.get_backend_name())
            hint = f" Install it with `pip install 'tap-whoop[{extra}]'`." if extra else ""
            raise error(f"No SQLAlchemy driver for {what} {self.location} ({exc}).{hint}") from None
        self.metadata = sa.MetaData()
        self._created = False

    def _prepare_local_file(self) -> Path | None:
        if self.url.get_backend_name() not in {"sqlite", "duckdb"}:
            return None
        database = self.url.database
        if not database or database == ":memory:" or database.startswith("md:"):
            return None
        path = Path(database).expanduser().absolute()
        ensure_directory(path.parent, self.what, self.error)
        return path

    @contextlib.contextmanager
    def connect(self, poll_seconds: float) -> Iterator[Connection]:
        """A connection, once the tables of `metadata` exist; while the database is busy (locked by
        another process), opening is retried every `poll_seconds` for up to LOCK_TIMEOUT_SECONDS."""
        from sqlalchemy.exc import DBAPIError

        deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
        while True:
            try:
                conn = self.engine.connect()
                break
            except DBAPIError as exc:
                busy = "lock" in str(exc.orig).lower()
                if not busy or time.monotonic() > deadline:
                    msg = f"Cannot open {self.what} {self.location}: {type(exc.orig).__name__}"
                    raise self.error(msg + self._server_hint(exc.orig)) from None
                time.sleep(poll_seconds)
        try:
            self._create_tables(conn)
            yield conn
        finally:
            conn.close()

    def _server_hint(self, error: BaseException | None) -> str:
        """For PostgreSQL, libpq's own first line (it never shows the password: unreachable server, failed
        authentication, missing database) and where the URL's empty parts come from."""
        if self.url.get_backend_name() != "postgresql":
            return ""
        reason = (str(error).strip().splitlines() or [""])[0]
        return (
            f" ({reason}). Check that the server runs and the URL, or for its empty parts PGHOST, PGPORT,"
            " PGUSER, PGPASSWORD and PGDATABASE."
        )

    def _create_tables(self, conn: Connection) -> None:
        if self._created:
            return
        from sqlalchemy.exc import DBAPIError

        try:
            self.metadata.create_all(conn, checkfirst=True)
            conn.commit()
        except DBAPIError:
            conn.rollback()  # another process created them between our check and our CREATE
        if self.local_file is not None and self.local_file.exists():
            os.chmod(self.local_file, 0o600)
        self._created = True
