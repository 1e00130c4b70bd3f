"""`tap-whoop serve`: the web service's application, and the command that runs it."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from starlette.testclient import TestClient
from tap_whoop.service.app import create_app

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
