"""The failures a user can fix, and how they end a command: one line naming the cause and the fix.

Every expected failure (settings, token store, network, WHOOP's refusals) raises a `WhoopUserError` subclass
whose message says what went wrong and what to do; `tap_whoop.cli.main` prints that one line and exits 1. Any
other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path


class WhoopUserError(Exception):
    """A failure the user can fix; the message names the cause and the fix (and never holds a secret)."""


class WhoopSettingsError(WhoopUserError):
    """The settings, or a file given on the command line, are invalid."""


def ensure_directory(
    path: Path, what: str, error: type[WhoopUserError] = WhoopUserError, setting: str = "token_store"
) -> None:
    """Create `path` (mode 0700) for `what`, or raise `error` in one line saying which setting to change."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
        if exc.errno == errno.EEXIST:
            reason = "a file of that name is in the way"
        msg = (
            f"Cannot create the directory {path} for {what}: {reason}. Set {setting} to a location in a "
            "directory you can write to."
        )
        raise error(msg) from None
