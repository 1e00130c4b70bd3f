"""`tap-whoop serve`: the web service's application, the command that runs it, and what a client may hold."""

from __future__ import annotations

import contextlib
import json
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import uvicorn
from starlette.testclient import TestClient
from tap_whoop.service.app import create_app
from tap_whoop.service.server import Limits, uvicorn_config

TAP = str(Path(sys.executable).with_name("tap-whoop"))
CONFIG = {"client_id": "fake-client", "client_secret": "fake-secret"}


def test_healthz_answers_for_load_balancers():
    with TestClient(create_app(CONFIG)) as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.slow
def test_serve_listens_where_it_is_told_and_stops_on_sigterm(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = tmp_path / "config.json"
    config.write_text(json.dumps(CONFIG))
    server = subprocess.Popen(
        [TAP, "--config", str(config), "serve", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except requests.ConnectionError:
                assert server.poll() is None, server.stderr.read()
                assert time.monotonic() < deadline, "serve did not start listening within 30 s"
                time.sleep(0.1)
        assert response.json() == {"status": "ok"}
    finally:
        server.terminate()
        out, err = server.communicate(timeout=30)
    # uvicorn shuts down gracefully, then re-raises the signal so the exit status tells how it ended.
    assert server.returncode in (0, -signal.SIGTERM), err
    assert "Application shutdown complete" in err
    assert out == ""  # a web service, not a tap: no Singer messages on stdout


# Short limits so the tests wait little; the assertions allow ten times as much, for a loaded machine.
SHORT = Limits(head_seconds=1, body_seconds=1, keep_alive_seconds=1, grace_seconds=1)
WITHIN_SECONDS = 10.0


@contextlib.contextmanager
def serving(tmp_path: Path, limits: Limits) -> Iterator[int]:
    """The service as `serve` runs it (uvicorn, the guarded protocol), in a thread; yields its port."""
    config = {**CONFIG, "token_store": str(tmp_path / "tokens.json")}
    server = uvicorn.Server(uvicorn_config(create_app(config, limits), limits=limits))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "the server stopped while starting"
        assert time.monotonic() < deadline, "the server did not start within 30 s"
        time.sleep(0.01)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


class RawClient:
    """One connection that sends `head` at once, then `trickle` one byte per tick, and records the end."""

    def __init__(self, port: int, head: bytes = b"", trickle: bytes = b"") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WITHIN_SECONDS)
        self.sock.sendall(head)
        self.trickle, self.received = trickle, b""
        self.started, self.lasted = time.monotonic(), None

    def tick(self) -> None:
        if self.lasted is not None:
            return
        if select.select([self.sock], [], [], 0)[0]:
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                self._closed()
                return
            self.received += data
        if self.trickle:
            try:
                self.sock.send(self.trickle[:1])
            except OSError:  # reset or broken pipe: the server has closed it
                self._closed()
                return
            self.trickle = self.trickle[1:]

    def _closed(self) -> None:
        self.lasted = time.monotonic() - self.started
        self.sock.close()


def hold(clients: list[RawClient]) -> None:
    """Keep every client going (a byte each per 0.1 s) until the server has closed them all."""
    deadline = time.monotonic() + WITHIN_SECONDS
    while any(c.lasted is None for c in clients):
        assert time.monotonic() < deadline, "the server still holds connections after 10 s"
        for client in clients:
            client.tick()
        time.sleep(0.1)


def test_half_sent_headers_and_silent_connections_are_dropped_within_seconds(tmp_path):
    head = b"POST /webhooks/whoop HTTP/1.1\r\nHost: service\r\nContent-Type: application/json\r\n"
    with serving(tmp_path, SHORT) as port:
        # Never a complete head: a byte every 0.1 s (uvicorn's only timer restarts on each byte), or none.
        clients = [RawClient(port, trickle=head * 20) for _ in range(5)] + [RawClient(port) for _ in range(5)]
        hold(clients)
    assert all(not c.received for c in clients)  # dropped, not answered
    assert all(c.trickle for c in clients[:5])  # ... while they were still sending


def test_a_slow_body_is_answered_408_within_seconds(tmp_path, caplog):
    webhook = (
        b"POST /webhooks/whoop HTTP/1.1\r\nHost: service\r\nContent-Length: 60000\r\n"
        b"X-WHOOP-Signature: AAAA\r\nX-WHOOP-Signature-Timestamp: 1\r\n\r\n"
    )
    # A body no route reads is not waited for either: the connection ends after its deadline.
    unread = b"GET /healthz HTTP/1.1\r\nHost: service\r\nContent-Length: 60000\r\n\r\n"
    with serving(tmp_path, SHORT) as port:
        clients = [RawClient(port, webhook, b"{" * 60000), RawClient(port, unread, b"{" * 60000)]
        hold(clients)
    slow_webhook, slow_unread = clients
    assert slow_webhook.received.startswith(b"HTTP/1.1 408 ")
    assert b"connection: close" in slow_webhook.received.lower()
    assert b"body not received within 1 seconds" in slow_webhook.received
    assert slow_unread.received.startswith(b"HTTP/1.1 200 ")
    assert slow_webhook.trickle
    assert slow_unread.trickle


def test_an_idle_keep_alive_connection_is_closed_within_seconds(tmp_path):
    with serving(tmp_path, SHORT) as port:
        client = RawClient(port, b"GET /healthz HTTP/1.1\r\nHost: service\r\n\r\n")
        hold([client])
    assert client.received.startswith(b"HTTP/1.1 200 ")
    assert b'{"status":"ok"}' in client.received


def test_connections_past_the_cap_are_answered_503_until_one_ends(tmp_path):
    request = b"GET /healthz HTTP/1.1\r\nHost: service\r\n\r\n"
    roomy = Limits(head_seconds=30, keep_alive_seconds=30, connections=3)  # nothing times out meanwhile

    def answer(sock: socket.socket) -> bytes:
        sock.sendall(request)
        return sock.recv(65536)

    with serving(tmp_path, roomy) as port, contextlib.ExitStack() as stack:
        held = []
        for _ in range(3):  # one after the other: each is open (and counted) before the next asks
            held.append(stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=10)))
            answered = answer(held[-1])
        # uvicorn counts the asking connection too: the third of a cap of 3 is turned away.
        assert answered.startswith(b"HTTP/1.1 503 ")
        held[0].close()
        deadline = time.monotonic() + WITHIN_SECONDS
        while True:  # the server notices the close in its own time
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                if answer(sock).startswith(b"HTTP/1.1 200 "):
                    break
            assert time.monotonic() < deadline, "no room after a held connection ended"
            time.sleep(0.05)
