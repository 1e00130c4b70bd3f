"""The sandbox in a process of its own (as WHOOP would be: no share of the caller's interpreter or GIL),
driven through its HTTP control plane (/_sandbox/). For benchmarks; tests mostly run `Sandbox` in-process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

START_TIMEOUT = 120.0


class SandboxProcess:
    """`python -m whoop_sandbox ARGS` on a free loopback port, stopped on exit; credentials: athlete 0's."""

    def __init__(self, workdir: Path, *args: str) -> None:
        self.credentials_path = workdir / f"sandbox-{time.monotonic_ns()}.json"
        self.args = [sys.executable, "-m", "whoop_sandbox", "--port", "0", *args,
                     "--credentials-out", str(self.credentials_path)]  # fmt: skip
        self.credentials: dict[str, Any] = {}
        self.control = ""

    def __enter__(self) -> SandboxProcess:
        self.process = subprocess.Popen(self.args, stdout=subprocess.DEVNULL)  # noqa: S603 - fixed command
        deadline = time.monotonic() + START_TIMEOUT
        while not self.credentials_path.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"the sandbox did not start: {' '.join(self.args)}")
            time.sleep(0.1)
        self.credentials = json.loads(self.credentials_path.read_text())
        self.control = self.credentials["api_url"].removesuffix("/developer") + "/_sandbox"
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)

    def call(self, operation: str, **kwargs: object) -> Any:
        """A control operation (POST /_sandbox/<operation>); its result."""
        request = urllib.request.Request(  # noqa: S310 - the sandbox's own loopback http URL
            f"{self.control}/{operation}",
            data=json.dumps(kwargs).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback http only
            return json.load(response)["result"]

    def get(self, what: str) -> Any:
        """A control resource (GET /_sandbox/<what>), e.g. `info` or `log`."""
        with urllib.request.urlopen(f"{self.control}/{what}", timeout=30) as response:  # noqa: S310
            return json.load(response)

    def log(self) -> list[dict[str, Any]]:
        """The request log."""
        requests: list[dict[str, Any]] = self.get("log")["requests"]
        return requests
