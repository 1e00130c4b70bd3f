"""Base classes for WHOOP streams: requests, retries, pacing, errors, incremental windows and progress."""

from __future__ import annotations

import datetime as dt
import random
import time
import typing as t
import weakref
from functools import cached_property
from http import HTTPStatus
from importlib import resources
from urllib.parse import urlparse

import requests
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.helpers.jsonpath import extract_jsonpath
from singer_sdk.schema.source import SchemaDirectory, StreamSchema
from singer_sdk.streams import RESTStream

from tap_whoop.pagination import NextTokenPaginator, next_token, response_payload

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from singer_sdk.helpers.types import Context

    from tap_whoop.auth import WhoopAuthenticator
    from tap_whoop.pacing import RateLimitPacer
    from tap_whoop.tap import TapWhoop

PAGE_SIZE = 25  # WHOOP's maximum for every collection endpoint


def parse_datetime(value: str) -> dt.datetime:
    """Parse an ISO 8601 timestamp; naive values are taken as UTC."""
    parsed = dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def format_datetime(value: dt.datetime) -> str:
    """WHOOP's own timestamp format: UTC, millisecond precision, `Z` suffix."""
    utc = value.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


class WhoopStream(RESTStream):
    """A WHOOP API v2 endpoint."""

    records_jsonpath = "$.records[*]"
    # tap_whoop/schemas/<stream name>.json, generated from WHOOP's OpenAPI spec by scripts/generate_schemas.py
    schema = StreamSchema(SchemaDirectory(resources.files("tap_whoop") / "schemas"))

    # Retry policy (class attributes so tests can shrink them). Six tries with waits of ~2, 4, 8, 16 and
    # 32 s ride out about a minute of WHOOP trouble; 429s and the one post-401 retry wait only as long as
    # they must.
    request_timeout_seconds: float = 60.0
    retry_max_tries: int = 6
    retry_base_seconds: float = 2.0
    retry_max_seconds: float = 60.0

    _tap: TapWhoop

    @property
    def url_base(self) -> str:
        return self.config["api_url"].rstrip("/")

    @property
    def authenticator(self) -> WhoopAuthenticator:
        # One authenticator per tap run: every stream shares (and refreshes) the same tokens.
        return self._tap.authenticator

    @property
    def pacer(self) -> RateLimitPacer:
        return self._tap.pacer

    @property
    def timeout(self) -> float:  # type: ignore[override]
        return self.request_timeout_seconds

    @cached_property
    def _reauthenticated_requests(self) -> weakref.WeakSet[requests.PreparedRequest]:
        return weakref.WeakSet()

    def request_decorator(self, func: t.Callable) -> t.Callable:
        def paced(*args: t.Any, **kwargs: t.Any) -> requests.Response:
            self.pacer.wait_turn()  # before every attempt, retries included
            return func(*args, **kwargs)

        with_retries = super().request_decorator(paced)

        def call(*args: t.Any, **kwargs: t.Any) -> requests.Response:
            gave_up = f"Stream '{self.name}' gave up after {self.retry_max_tries} tries"
            try:
                return with_retries(*args, **kwargs)
            except RetriableAPIError as exc:
                raise FatalAPIError(f"{gave_up}: {exc}") from exc
            except requests.exceptions.RequestException as exc:
                failure = f"{type(exc).__name__} (timeout or dropped connection)"
                msg = f"{gave_up}: GET {self.path} failed with {failure}"
                raise FatalAPIError(msg) from exc

        return call

    def backoff_max_tries(self) -> int:
        return self.retry_max_tries

    def backoff_jitter(self, value: float) -> float:
        return value  # jitter is applied by backoff_wait_generator, only where it helps

    def backoff_wait_generator(self) -> t.Generator[float, t.Any, None]:
        exc = yield  # type: ignore[misc]
        attempt = 0
        while True:
            response = exc.response if isinstance(exc, RetriableAPIError) else None
            if response is not None and response.status_code in {
                HTTPStatus.TOO_MANY_REQUESTS,
                HTTPStatus.UNAUTHORIZED,
            }:
                # The pacer sleeps until the quota resets before the retry; a fresh token needs no wait.
                exc = yield 0.0
                continue
            delay = min(self.retry_max_seconds, self.retry_base_seconds * 2**attempt)
            attempt += 1
            exc = yield delay * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not cryptography

    def validate_response(self, response: requests.Response) -> None:
        self.pacer.observe(response.status_code, response.headers)
        status = response.status_code
        if status == HTTPStatus.UNAUTHORIZED:
            self._handle_unauthorized(response)
        if status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            raise RetriableAPIError(self.response_error_message(response), response)
        if status >= HTTPStatus.BAD_REQUEST:
            raise FatalAPIError(f"Stream '{self.name}': {self.response_error_message(response)}")
        try:
            payload = response_payload(response)
        except ValueError as exc:
            msg = f"malformed JSON from GET {self.path} (HTTP {status}): {exc}"
            raise RetriableAPIError(msg, response) from exc
        if not isinstance(payload, dict):
            msg = f"malformed JSON from GET {self.path} (HTTP {status}): expected an object"
            raise RetriableAPIError(msg, response)
        paginator = getattr(self, "_paginator", None)
        if paginator is not None and paginator.is_repeat(next_token(response)):
            # Checked here, before the page's records are emitted: following the token again would page in
            # a circle, and retrying cannot help (it is the server's answer). Fail; the bookmark stays put.
            msg = (
                f"Stream '{self.name}': GET {self.path} returned a next_token it had already returned "
                f"(pagination loop after {paginator.count} pages); the bookmark was not advanced"
            )
            raise FatalAPIError(msg)

    def _handle_unauthorized(self, response: requests.Response) -> None:
        request = response.request
        if request in self._reauthenticated_requests:
            msg = (
                f"Stream '{self.name}': GET {self.path} was refused (401 Unauthorized) even with a freshly "
                "refreshed access token. Re-authorize with `tap-whoop auth` and check the app's scopes."
            )
            raise FatalAPIError(msg)
        self._reauthenticated_requests.add(request)
        rejected = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        self.authenticator.handle_unauthorized(rejected)
        # The SDK re-sends this same PreparedRequest; `_request` runs the authenticator on it again first.
        raise RetriableAPIError(self.response_error_message(response), response)

    def response_error_message(self, response: requests.Response) -> str:
        # Path only (no query string) and a short body excerpt; the Authorization header is never included.
        path = urlparse(response.url).path or self.path
        body = " ".join(response.text[:200].split()) if response.content else ""
        msg = f"GET {path} failed with HTTP {response.status_code} {response.reason}"
        return f"{msg}: {body}" if body else msg

    def parse_response(self, response: requests.Response) -> Iterable[dict]:
        # The SDK's own parse_response would decode the body a second time; reuse the one validation decoded.
        yield from extract_jsonpath(self.records_jsonpath, input=response_payload(response))


class WhoopCollectionStream(WhoopStream):
    """A paginated collection (`records` + `next_token`), read incrementally on `updated_at`.

    WHOOP filters collections by each record's own `start`, sorts them newest-`start` first and changes
    records after the fact, so:
    - the request window starts `lookback_days` before the bookmark (or at `start_date` on the first run) to
      catch late scores, back-dated workouts and edited sleeps;
    - `is_sorted = False`: the SDK keeps the new bookmark as a progress marker and promotes it only when the
      stream (partition) completes, so an interrupted run re-reads from the old bookmark and loses nothing;
    - the bookmark is capped by the replication signpost: the run's start time, or `end_date` when the
      window is bounded, because records starting after `end_date` were never requested.
    """

    replication_key = "updated_at"
    # Keep the SDK's check_sorted=True: with it off, the progress marker takes the *last* value, not the max.
    is_sorted = False

    # One progress line per page: at WHOOP's sustained limit that is one line every 0.6 s or so.
    progress_every_pages = 1
    # Field that tells how far back in time a page reached (recoveries carry no `start` of their own).
    progress_time_field = "start"

    def get_new_paginator(self) -> NextTokenPaginator:
        self._paginator = NextTokenPaginator()
        return self._paginator

    def window(self, context: Context | None) -> tuple[dt.datetime | None, dt.datetime | None]:
        """The [start, end) interval of record start times requested this run."""
        # The bookmark, or start_date when there is none or it is later.
        start = self.get_starting_timestamp(context)
        if start is not None:
            start -= dt.timedelta(days=self.config.get("lookback_days", 0))
            if start_date := self.config.get("start_date"):
                start = max(start, parse_datetime(start_date))
        end_date = self.config.get("end_date")
        return start, (parse_datetime(end_date) if end_date else None)

    def get_replication_key_signpost(self, context: Context | None = None) -> str:
        signpost = dt.datetime.fromtimestamp(self._initialized_at / 1000, tz=dt.UTC)
        if end_date := self.config.get("end_date"):
            signpost = min(signpost, parse_datetime(end_date))
        return format_datetime(signpost)

    def get_url_params(self, context: Context | None, next_page_token: str | None) -> dict[str, t.Any]:
        start, end = self.window(context)
        return {
            "limit": PAGE_SIZE,
            "start": format_datetime(start) if start else None,
            "end": format_datetime(end) if end else None,
            "nextToken": next_page_token,
        }

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        start, end = self.window(context)
        self.logger.info(
            "Requesting %s with start %s and end %s",
            self.name,
            format_datetime(start) if start else "(beginning of history)",
            format_datetime(end) if end else "(now)",
        )
        self._progress = _Progress(start=start, end=end, began=time.monotonic())
        yield from super().get_records(context)
        self._log_progress(final=True)

    def parse_response(self, response: requests.Response) -> Iterable[dict]:
        records = list(super().parse_response(response))
        self._progress.add_page(records, self.progress_time_field)
        if self._progress.pages % self.progress_every_pages == 0:
            self._log_progress()
        return records

    def _log_progress(self, *, final: bool = False) -> None:
        progress = self._progress
        reached = format_datetime(progress.oldest_start) if progress.oldest_start else "-"
        requested = format_datetime(progress.start) if progress.start else "beginning of history"
        eta = progress.eta_seconds(self.pacer.sustained_rate())
        self.logger.info(
            "%s %s: %d records in %d pages; reached start %s (requested %s)%s",
            self.name,
            "done" if final else "progress",
            progress.records,
            progress.pages,
            reached,
            requested,
            "" if final or eta is None else f"; ~{dt.timedelta(seconds=round(eta))} left at the rate limit",
        )


class _Progress:
    """What a backfill has covered so far, to estimate what is left.

    Pages arrive newest first, so the oldest `start` read moves back from `end` towards the requested `start`;
    the remaining share of that span, at the pages-per-span rate seen so far, gives the pages left.
    """

    def __init__(self, start: dt.datetime | None, end: dt.datetime | None, began: float) -> None:
        self.start = start
        self.end = end or dt.datetime.now(dt.UTC)
        self.began = began
        self.pages = 0
        self.records = 0
        self.oldest_start: dt.datetime | None = None

    def add_page(self, records: list[dict], time_field: str) -> None:
        self.pages += 1
        self.records += len(records)
        starts = [parse_datetime(r[time_field]) for r in records if r.get(time_field)]
        if starts:
            oldest = min(starts)
            self.oldest_start = oldest if self.oldest_start is None else min(self.oldest_start, oldest)

    def eta_seconds(self, requests_per_second: float | None) -> float | None:
        if self.start is None or self.oldest_start is None:
            return None
        covered = (self.end - self.oldest_start).total_seconds()
        left = (self.oldest_start - self.start).total_seconds()
        if covered <= 0 or left <= 0:
            return 0.0
        pages_left = self.pages * left / covered
        elapsed = time.monotonic() - self.began
        observed = self.pages / elapsed if elapsed > 0 else None
        rates = [r for r in (requests_per_second, observed) if r]
        return pages_left / min(rates) if rates else None
