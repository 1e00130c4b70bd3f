"""The browser the browser tests drive: Debian's Chromium (`.ci/run` installs it), or the one WHOOP_CHROMIUM
names (on GitHub: the runner's Chrome); never Playwright's own download. A missing browser fails the test,
never skips it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("WHOOP_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium; .ci/run does)"
        )


def launch(playwright):
    """A headless Chromium browser under Playwright (`sync_playwright()`'s object); close it when done."""
    require_chromium()
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
