"""A throwaway PostgreSQL server for tests: `initdb` in a temporary folder, a free loopback port, unix sockets
beside the data, stopped and deleted at the end.

PostgreSQL refuses to run as root (as CI and the development machines run the tests), so the server then runs
as the unprivileged user `nobody`. Its clock zone is far from UTC on purpose: a client that forgets to pin its
session to UTC writes local wall-clock times, and the tests see it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SERVER_USER = "nobody"
SUPERUSER = "whoop"
# UTC+14 all year (no DST), as far from UTC as a zone goes.
SERVER_TIMEZONE = "Pacific/Kiritimati"
START_ATTEMPTS = 3
INSTALL_HINT = "install PostgreSQL (Debian: apt-get install postgresql) or put its bin/ on PATH"


class PostgresUnavailable(RuntimeError):
    """PostgreSQL's programs are missing, or the server would not start."""


def find_bindir() -> Path:
    """The directory of `initdb` and `pg_ctl`: PATH first, then Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if debian:
        return debian[-1].parent
    raise PostgresUnavailable(f"PostgreSQL's initdb is not installed: {INSTALL_HINT}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class PostgresServer:
    """A running server: superuser `user` with `password`, TCP on 127.0.0.1:`port`."""

    host: str
    port: int
    user: str
    password: str
    socket_dir: Path

    def libpq_env(self, database: str) -> dict[str, str]:
        """libpq's variables for `database`, as psql and every Postgres client read them."""
        return {
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGPASSWORD": self.password,
            "PGDATABASE": database,
            "PGSSLMODE": "disable",
        }

    def url(self, database: str, driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def connect(self, database: str = "postgres"):  # psycopg is imported only when a test connects
        """A psycopg connection in autocommit, its session in UTC."""
        import psycopg

        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=database,
            autocommit=True,
            options="-c TimeZone=UTC",
        )

    def create_database(self, name: str) -> str:
        """A new empty database `name` (a plain identifier); returns its name."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"not a plain identifier: {name!r}")
        with self.connect() as conn:
            conn.execute(f'create database "{name}"')
        return name


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", SERVER_USER, "--", *command] if os.geteuid() == 0 else command


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(  # noqa: S603 - our own fixed commands; bounded by timeout
        _as_server_user(command), capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        output = (result.stderr or result.stdout)[-1500:]
        raise PostgresUnavailable(f"{what} failed ({result.returncode}): {output}")


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a fresh server; stop it and delete its folder on exit."""
    bindir = find_bindir()
    # Not under pytest's tmp_path: its root is private to root, and the server user must reach its folder.
    root = Path(tempfile.mkdtemp(prefix="whoop-postgres-"))
    data, sockets, pwfile = root / "data", root / "sockets", root / "password"
    password = secrets.token_hex(16)
    sockets.mkdir()
    pwfile.write_text(password + "\n", encoding="utf-8")
    if os.geteuid() == 0:
        import pwd

        entry = pwd.getpwnam(SERVER_USER)
        for path in (root, sockets, pwfile):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    started = False
    try:
        _run(
            [
                str(bindir / "initdb"),
                "--pgdata",
                str(data),
                "--username",
                SUPERUSER,
                "--pwfile",
                str(pwfile),
                "--auth-local",
                "trust",
                "--auth-host",
                "scram-sha-256",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",
            ],
            "initdb",
        )
        pwfile.unlink()
        # Durability is of no use to a server deleted after the tests; without it every commit is faster.
        options = (
            f"-c listen_addresses=127.0.0.1 -c unix_socket_directories={sockets} -c fsync=off"
            f" -c synchronous_commit=off -c full_page_writes=off -c TimeZone={SERVER_TIMEZONE}"
        )
        for attempt in range(START_ATTEMPTS):
            # Another process may take the port between the probe and the start: then another one.
            port = _free_port()
            try:
                _run(
                    [
                        str(bindir / "pg_ctl"),
                        "--pgdata",
                        str(data),
                        "--log",
                        str(root / "server.log"),
                        "--options",
                        f"{options} -c port={port}",
                        "--wait",
                        "--timeout",
                        "60",
                        "start",
                    ],
                    "pg_ctl start",
                )
            except PostgresUnavailable:
                if attempt == START_ATTEMPTS - 1:
                    raise
                continue
            started = True
            break
        yield PostgresServer("127.0.0.1", port, SUPERUSER, password, sockets)
    finally:
        if started:
            stop = [str(bindir / "pg_ctl"), "--pgdata", str(data), "--mode", "fast", "--wait", "stop"]
            _run(stop, "pg_ctl stop")
        shutil.rmtree(root, ignore_errors=True)
