"""The one retry policy of every WHOOP call: which failures are tried again, how long to wait, when to stop.

WHOOP's trouble (a 5xx burst, a dropped connection, a malformed page) passes within a minute or two, so each
call tries again with exponential backoff and jitter, within a bounded number of tries and a bounded time. A
429 and the one retry after a 401 do not wait here: the app's pacer sleeps until the quota resets before the
next attempt, and a freshly refreshed token needs no wait.
"""

from __future__ import annotations

import dataclasses
import random
import typing as t
from http import HTTPStatus

import backoff
import requests
from singer_sdk.exceptions import RetriableAPIError

T = t.TypeVar("T")

# Failures of the transport itself: nothing (or only part) came back, so asking again may well succeed.
DROPPED = (
    ConnectionResetError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)
# Answers that mean "ask again": waited out by the pacer (429) or answered by a refresh (401), not by backoff.
NO_WAIT = frozenset({HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.UNAUTHORIZED})


class TryAgain(RetriableAPIError):
    """An answer worth asking again for (a 5xx, a 429, the first 401, a malformed page)."""


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Six tries with waits of ~2, 4, 8, 16 and 32 s ride out about a minute of WHOOP trouble; no call keeps a
    run longer than `give_up_seconds`. `timeout` is every request's (connect, read) timeout."""

    tries: int = 6
    base_seconds: float = 2.0
    max_wait_seconds: float = 60.0
    give_up_seconds: float = 300.0
    timeout: tuple[float, float] = (10.0, 60.0)

    def waits(self) -> t.Generator[float, BaseException | None, None]:
        # backoff primes the generator with a bare next() and then sends it each exception.
        exc = yield 0.0
        attempt = 0
        while True:
            response = exc.response if isinstance(exc, RetriableAPIError) else None
            if response is not None and response.status_code in NO_WAIT:
                exc = yield 0.0
                continue
            delay = min(self.max_wait_seconds, self.base_seconds * 2**attempt)
            attempt += 1
            exc = yield delay * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not cryptography

    def call(
        self,
        attempt: t.Callable[[], T],
        retriable: tuple[type[Exception], ...] = (TryAgain, *DROPPED),
        on_retry: t.Callable[[BaseException, int, float], None] | None = None,
    ) -> T:
        """`attempt()` until it returns, raises something not `retriable`, or the tries or the time run out
        (then its last exception propagates)."""

        def log(details: t.Any) -> None:
            if on_retry is not None:
                exc = t.cast("BaseException", details.get("exception"))
                on_retry(exc, int(details["tries"]), float(details.get("wait") or 0.0))

        retrying = backoff.on_exception(
            self.waits,
            retriable,
            max_tries=self.tries,
            max_time=self.give_up_seconds,
            jitter=None,
            on_backoff=log,
            logger=None,
        )
        return retrying(attempt)()
