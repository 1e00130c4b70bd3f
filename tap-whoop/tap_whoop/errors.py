"""The tap's error model: every failure a user can fix, whom it concerns, and the fixes written once.

Every expected failure (settings, token store, network, WHOOP's refusals) raises a `WhoopUserError` subclass
whose message says what went wrong and what to do; `tap_whoop.cli.main` prints that one line and exits 1. Any
other exception is a bug and keeps its traceback. A failed WHOOP call (API or token endpoint) is a
`WhoopAPIError` whose `kind` (a `Failure`) tells a run what to do next: wait for the next run, stop for the
whole app, or set the athlete's registry status.
"""

from __future__ import annotations

import enum
import errno
import os
from pathlib import Path

from singer_sdk.exceptions import FatalAPIError

# What a run that stops on WHOOP's account can tell the user: state already written stays valid.
RUN_AGAIN = "the state saved so far stays valid: run again later"
# What an athlete whose authorization is gone must do (the registry statuses below and every command say so).
CONSENT_AGAIN = "the athlete must consent again: `tap-whoop auth`, or a link from `tap-whoop athletes invite`"


class Failure(enum.StrEnum):
    """Whom a failed WHOOP call concerns. The athlete-level kinds are also registry statuses (their values
    are what the token store keeps)."""

    TRANSIENT = "transient"  # WHOOP or the network: the next run tries again; nobody's status changes
    APP = "app"  # the app's settings, credentials or token store: every athlete is affected, the run stops
    NEEDS_REAUTHORIZATION = "needs_reauthorization"  # this athlete's tokens no longer work
    REVOKED = "revoked"  # this athlete's authorization was withdrawn
    DEACTIVATED = "deactivated"  # WHOOP answers 403 deactivated_user: the membership is inactive

    @property
    def athlete_level(self) -> bool:
        """About one athlete's authorization or membership: their registry status says so."""
        return self not in {Failure.TRANSIENT, Failure.APP}


class WhoopUserError(Exception):
    """A failure the user can fix; the message names the cause and the fix (and never holds a secret)."""


class WhoopSettingsError(WhoopUserError):
    """The settings, or a file given on the command line, are invalid."""


class TokenStoreError(WhoopUserError):
    """The token store (or the webhook event log beside it) cannot be read or written (never carries a
    token)."""


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


class WhoopAPIError(FatalAPIError, WhoopUserError):
    """A WHOOP call (API or token endpoint) failed for good, after the client's retries; `kind` says whom it
    concerns, the message what to do (never a token)."""

    def __init__(self, message: str, kind: Failure = Failure.TRANSIENT):
        super().__init__(message)
        self.kind = Failure(kind)


class WhoopAuthError(WhoopAPIError):
    """Authentication cannot proceed (the token store, the app's credentials, a refused or lost refresh)."""

    def __init__(self, message: str, kind: Failure = Failure.NEEDS_REAUTHORIZATION):
        super().__init__(message, kind)


class RecordLookupRefused(Exception):
    """WHOOP refused a single-record request as malformed (400): asking again cannot help."""


# The token endpoint's three outcomes. WHOOP rotates the refresh token the moment it accepts a refresh, so
# whether a request may be sent again depends on which one it was.
class TokenRequestNotSent(Exception):
    """WHOOP certainly did not act on the token request (connection refused, DNS, connect timeout, TLS,
    429, 503)."""


class TokenRequestUncertain(Exception):
    """The token request may have reached WHOOP, which may have rotated the refresh token."""


class TokenRequestRejected(Exception):
    """WHOOP answered with an OAuth error; the refresh token was not rotated."""

    def __init__(self, error: str, status: int):
        super().__init__(error)
        self.error, self.status = error, status
        self.interrupted_at: float | None = None
