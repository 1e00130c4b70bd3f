"""pytest plugin (entry point `whoop_sandbox`): started sandboxes on loopback and a PostgreSQL server, stopped
at teardown."""

from __future__ import annotations

import pytest

from .sandbox import Sandbox

SMALL = {"seed": 7, "days": 30, "athletes": 2}


@pytest.fixture
def whoop_sandbox_factory():
    """Call with Sandbox keyword arguments; returns a started sandbox. All are stopped at teardown."""
    started: list[Sandbox] = []

    def factory(**kwargs) -> Sandbox:
        host, port = kwargs.pop("host", "127.0.0.1"), kwargs.pop("port", 0)
        sandbox = Sandbox(**{**SMALL, **kwargs}).start(host=host, port=port)
        started.append(sandbox)
        return sandbox

    yield factory
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def whoop_sandbox(whoop_sandbox_factory) -> Sandbox:
    """A small started sandbox: seed 7, 30 days, 2 athletes, WHOOP's default rate limits."""
    return whoop_sandbox_factory()


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server for the whole session (whoop_sandbox.postgres), stopped at the end. Each test
    creates its own database on it (`create_database`)."""
    from .postgres import postgres_server as start

    with start() as server:
        yield server
