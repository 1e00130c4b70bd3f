"""How `tap-whoop serve` holds its connections on the open internet: uvicorn's limits, and the one it lacks.

uvicorn closes a keep-alive connection left idle (`timeout_keep_alive`) and answers 503 past a number of open
connections (`limit_concurrency`), but nothing bounds how long a client may take to *send* a request: its only
timer is reset by every byte received and is not even started on a new connection, so a client trickling its
headers a byte at a time holds a connection (and, with enough of them, the whole service) forever. uvicorn
offers no setting for it (h11's `max_incomplete_event_size` bounds the size of a head, not its time), so
`GuardedH11Protocol` adds the deadline to uvicorn's h11 protocol: a request head must be complete within
`head_seconds` of the connection being ready for it, and its body within `body_seconds` (plus a grace) after
that, or the connection is closed. The webhook endpoint, the one route that reads a body, answers a slow one
408 itself at `body_seconds`; the protocol's cut comes later, for bodies nobody reads.
"""

from __future__ import annotations

import asyncio
import dataclasses
import typing as t

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one client may hold. WHOOP sends a few hundred bytes at once: these are generous to it."""

    head_seconds: float = 10.0
    body_seconds: float = 10.0
    keep_alive_seconds: int = 5
    connections: int = 100
    # After body_seconds, time for the webhook endpoint's own 408 to be written before the cut.
    grace_seconds: float = 5.0


LIMITS = Limits()


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on receiving each request (`Limits`)."""

    limits: t.ClassVar[Limits] = LIMITS

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._phase: str | None = None
        self._deadline: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._follow()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _follow(self) -> None:
        """Arm the deadline of what the client is sending now: a head, a body, or nothing (it is done)."""
        state = self.conn.their_state
        phase = "head" if state is h11.IDLE else "body" if state is h11.SEND_BODY else None
        if phase == self._phase:
            return  # a deadline runs from the start of its phase, not from the latest byte
        self._phase = phase
        self._disarm()
        if self.transport.is_closing() or phase is None:
            return
        limits = self.limits
        seconds = limits.head_seconds if phase == "head" else limits.body_seconds + limits.grace_seconds
        self._deadline = self.loop.call_later(seconds, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def uvicorn_config(
    app: t.Any, *, log_config: dict[str, t.Any] | None = None, limits: Limits = LIMITS
) -> uvicorn.Config:
    """uvicorn's settings for `app`, bounded by `limits` (the sockets are bound by the caller)."""
    protocol = type("GuardedH11Protocol", (GuardedH11Protocol,), {"limits": limits})
    return uvicorn.Config(
        app,
        http=protocol,
        ws="none",  # no route is a WebSocket: an upgrade request is answered like any other
        timeout_keep_alive=limits.keep_alive_seconds,
        limit_concurrency=limits.connections,
        log_level="info",
        access_log=False,
        log_config=log_config,
    )
