"""Fixtures of the end-to-end tests on the production path: a fakesnow server and a connection to it."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
import snowflake.connector
from e2e_support import VENV_BIN


@pytest.fixture(scope="module")
def fakesnow_server() -> Iterator[dict]:
    """A fakesnow server in its own process: its catalog is ours alone, and nothing leaks into this one."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [str(VENV_BIN / "fakesnow"), "--server", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            assert server.poll() is None, "the fakesnow server exited at start-up"
            assert time.monotonic() < deadline, "the fakesnow server did not start within 60 s"
            time.sleep(0.2)
        # fakesnow accepts any credentials; these are its documented defaults.
        yield {"user": "fake", "password": "snow", "account": "fakesnow", "host": "127.0.0.1", "port": port}
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def warehouse(fakesnow_server):
    connection = snowflake.connector.connect(
        **fakesnow_server,
        protocol="http",
        network_timeout=60,
        session_parameters={"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
    )
    with connection.cursor() as cursor:
        # What an administrator creates once in production (README): the database and the schema for state.
        cursor.execute("create database WHOOP")
        cursor.execute("create schema WHOOP.RAW")
    yield connection
    connection.close()
