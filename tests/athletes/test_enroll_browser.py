"""The enrollment flow in a real browser: Debian's Chromium, driven by Playwright, against `tap-whoop serve`.

The sandbox shows a consent page (Allow / Deny) as WHOOP does; the athlete clicks Allow and lands on the
service's success page; the same callback opened again is refused. Chromium comes from the system
(`.ci/run` installs Debian's package), never from Playwright's own download.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from chromium import launch
from tap_whoop.athletes import invites
from tap_whoop.stores import open_token_store

TAP = str(Path(sys.executable).with_name("tap-whoop"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def service(whoop_sandbox_factory, tmp_path):
    """`tap-whoop serve` on a free loopback port; (sandbox, config) while it runs."""
    sandbox = whoop_sandbox_factory(seed=42, days=3, athletes=2, rate_limits=[])
    sandbox.set_consent("page", athlete=1)
    port = free_port()
    config = {
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
        "api_url": sandbox.api_url,
        "token_url": sandbox.token_url,
        "auth_url": sandbox.auth_url,
        "token_store": str(tmp_path / "tokens.json"),
        "service_secret": "b" * 40,
        "public_url": f"http://127.0.0.1:{port}",
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    server = subprocess.Popen(
        [TAP, "serve", "--config", str(path), "--port", str(port)], stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"{config['public_url']}/healthz", timeout=2)
            break
        except requests.ConnectionError:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            assert time.monotonic() < deadline, "serve did not start within 30 s"
            time.sleep(0.1)
    try:
        yield sandbox, config
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
        for secret in ("sbx-rt-", "sbx-at-", "sbx-code-", config["client_secret"], config["service_secret"]):
            assert secret not in err, "the service's log shows no secret"


@pytest.mark.slow
def test_an_athlete_enrolls_in_chromium(service):
    from playwright.sync_api import sync_playwright

    sandbox, config = service
    invite, _ = invites.make_invite(config, invites.parse_duration("1h"))
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page()
            page.goto(invite)
            assert "Allow this app" in page.content()  # WHOOP's (the sandbox's) consent screen
            page.click("#allow")
            page.wait_for_url(f"{config['public_url']}/callback*")
            assert page.locator("h1").inner_text() == "Connected"
            first_name = sandbox.athletes[1].profile["first_name"]
            assert first_name in page.locator("p").inner_text()
            callback = page.url
            assert "sbx-" not in page.content()

            page.goto(callback)  # the same answer again: the state was single-use
            assert page.locator("h1").inner_text() == "Link already used or expired"

            page.goto(f"{config['public_url']}/connect?invite=forged")
            assert page.locator("h1").inner_text() == "Invite not valid"
        finally:
            browser.close()
    records = open_token_store(config["token_store"]).records(config["client_id"])
    assert set(records) == {str(sandbox.athletes[1].user_id)}
