"""`tap-whoop serve` for the end-to-end tests: the installed plugin's own executable, configured the way the
pipeline is (TAP_WHOOP_* variables, so the same token store and so the same event log), on a free port; and
deliveries WHOOP would never send, signed or not."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import requests

START_TIMEOUT = 120  # through Meltano, start-up takes a while on a busy machine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServeProcess:
    """`command` runs `tap-whoop serve` (directly, or through `meltano invoke tap-whoop:serve`); `--port` is
    added."""

    def __init__(
        self, command: list[str], env: Mapping[str, str], log_path: Path, cwd: Path | None = None
    ) -> None:
        self.command, self.env, self.log_path, self.cwd = command, dict(env), log_path, cwd
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def webhook_url(self) -> str:
        return self.base_url + "/webhooks/whoop"

    def __enter__(self) -> ServeProcess:
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(  # bounded by START_TIMEOUT and stopped on exit
                [*self.command, "--port", str(self.port)],
                env=self.env,
                cwd=self.cwd,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                requests.get(self.base_url + "/healthz", timeout=2).raise_for_status()
                return self
            except requests.RequestException:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    raise AssertionError(
                        f"tap-whoop serve did not start:\n{self.log_path.read_text()}"
                    ) from None
                time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def post(self, body: bytes, headers: Mapping[str, str]) -> requests.Response:
        return requests.post(self.webhook_url, data=body, headers=dict(headers), timeout=10)


def signed(secret: str, body: bytes, timestamp_ms: int | None = None) -> dict[str, str]:
    """Headers as WHOOP signs a delivery: base64(HMAC-SHA256(secret, timestamp + raw body))."""
    stamp = str(int(time.time() * 1000) if timestamp_ms is None else timestamp_ms)
    digest = hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "X-WHOOP-Signature": base64.b64encode(digest).decode(),
        "X-WHOOP-Signature-Timestamp": stamp,
    }


def bad_deliveries(service: ServeProcess, secret: str, user_id: int, record_id: str) -> dict[str, int]:
    """A forged, a stale, an oversized and a malformed delivery: the status each got."""
    body = json.dumps(
        {"user_id": user_id, "id": record_id, "type": "workout.deleted", "trace_id": "bad"}
    ).encode()
    stale = int(time.time() * 1000) - 10 * 60 * 1000
    oversized = json.dumps({"user_id": user_id, "padding": "x" * 70_000}).encode()
    return {
        "forged": service.post(body, signed("not-the-client-secret", body)).status_code,
        "stale": service.post(body, signed(secret, body, stale)).status_code,
        "oversized": service.post(oversized, signed(secret, oversized)).status_code,
        "malformed": service.post(b'{"user_id": ', signed(secret, b'{"user_id": ')).status_code,
    }
