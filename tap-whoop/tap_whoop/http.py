"""The base stream for every WHOOP endpoint: URL, authentication, pacing, retries and error messages."""

from __future__ import annotations

import random
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

from tap_whoop.errors import WhoopUserError
from tap_whoop.pagination import next_token, response_payload

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from singer_sdk.helpers.types import Context, RequestFunc
    from singer_sdk.streams import Stream

    from tap_whoop.athletes import AthleteRegistry
    from tap_whoop.auth.authenticator import WhoopAuthenticator
    from tap_whoop.feed import EventFeed
    from tap_whoop.pacing import RateLimitPacer


# What a run that stops on WHOOP's account can tell the user to do: state already written stays valid.
RUN_AGAIN = "the state saved so far stays valid: run again later"


class WhoopAPIError(FatalAPIError, WhoopUserError):
    """WHOOP's API refused or failed a request for good (after retries); the message says what to do."""


class WhoopRun(t.Protocol):
    """What a stream needs from the tap run it belongs to: each athlete's authenticator, the shared pacer, the
    run's snapshot of webhook events, and its sibling streams (by name)."""

    def athlete_authenticator(self, user_id: int) -> WhoopAuthenticator: ...

    def athlete_contexts(self) -> list[dict[str, int]]: ...

    def fresh_profile(self, user_id: int) -> dict[str, t.Any] | None: ...

    @property
    def registry(self) -> AthleteRegistry: ...

    @property
    def pacer(self) -> RateLimitPacer: ...

    @property
    def event_feed(self) -> EventFeed: ...

    @property
    def streams(self) -> Mapping[str, Stream]: ...


class RecordLookupRefused(Exception):
    """WHOOP refused a single-record request as malformed (400): asking again cannot help."""


class AthleteUnavailable(WhoopAPIError):
    """WHOOP refuses this athlete's data (not the app's): `kind` is their new registry status."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind


class WhoopStream(RESTStream):
    """A WHOOP API v2 endpoint, read for one athlete at a time: the context is `{"user_id": ...}`."""

    # False for streams about the app as a whole (synced once per run, without a context).
    per_athlete: bool = True

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

    # The SDK types it as any Tap; a WHOOP stream's tap also carries the run's authenticator and pacer.
    _tap: WhoopRun  # type: ignore[assignment]

    @property
    def url_base(self) -> str:
        return str(self.config["api_url"]).rstrip("/")

    @property
    def authenticator(self) -> WhoopAuthenticator:
        # The athlete whose partition is being synced: one authenticator per athlete, shared by streams.
        user_id = (self._partition_context or self.context or {}).get("user_id")
        if user_id is None:
            raise FatalAPIError(f"Stream '{self.name}' was asked for data without an athlete context")
        return self._tap.athlete_authenticator(int(user_id))

    _partition_context: t.Mapping[str, t.Any] | None = None

    @property
    def partitions(self) -> list[dict[str, t.Any]] | None:
        # A sync without a context (the SDK's dry run) covers every enrolled athlete.
        return self._tap.athlete_contexts() if self.per_athlete else None

    def get_records(self, context: t.Mapping[str, t.Any] | None) -> Iterable[dict[str, t.Any]]:
        self._partition_context = context
        yield from super().get_records(context)

    @property
    def emit_activate_version_messages(self) -> bool:
        # Each sync covers one athlete: ACTIVATE_VERSION would tell the target to drop everyone else's rows.
        return False

    def athlete_prefix(self, context: t.Mapping[str, t.Any] | None) -> str:
        user_id = (context or {}).get("user_id")
        return f"Athlete {user_id}: " if user_id is not None else ""

    def _write_schema_message(self) -> None:
        # Once per run: a stream is synced once per athlete, and some targets flush on every SCHEMA message.
        if not getattr(self, "_schema_written", False):
            super()._write_schema_message()
            self._schema_written = True

    @property
    def pacer(self) -> RateLimitPacer:
        return self._tap.pacer

    @property
    # The SDK annotates whole seconds (int); requests takes float seconds, and the tests shrink it below one.
    def timeout(self) -> float:  # type: ignore[override]
        return self.request_timeout_seconds

    @cached_property
    def _reauthenticated_requests(self) -> weakref.WeakSet[requests.PreparedRequest]:
        return weakref.WeakSet()

    @cached_property
    def _lookups(self) -> weakref.WeakSet[requests.PreparedRequest]:
        return weakref.WeakSet()

    def fetch_one(self, path: str, context: Context | None) -> dict[str, t.Any] | None:
        """GET one record (`path` under the API base, e.g. `/v2/cycle/123`) through this stream's own request
        path: the same authenticator, pacer and retries as its pages. None when WHOOP answers 404 (no such
        record: the only answer that confirms a deletion); RecordLookupRefused on 400."""
        url = self.url_base + path
        request = self.build_prepared_request(method="GET", url=url, headers=self.http_headers)
        self._lookups.add(request)
        response = self.request_decorator(self._request)(request, context)
        if response.status_code == HTTPStatus.NOT_FOUND:
            return None
        if response.status_code == HTTPStatus.BAD_REQUEST:
            raise RecordLookupRefused(self.response_error_message(response))
        payload = response_payload(response)
        return payload if isinstance(payload, dict) else None

    def request_decorator(self, func: RequestFunc) -> RequestFunc:
        def paced(*args: t.Any, **kwargs: t.Any) -> requests.Response:
            self.pacer.wait_turn()  # before every attempt, retries included
            return func(*args, **kwargs)

        with_retries = super().request_decorator(paced)

        def call(*args: t.Any, **kwargs: t.Any) -> requests.Response:
            gave_up = f"Stream '{self.name}' gave up after {self.retry_max_tries} tries"
            try:
                return with_retries(*args, **kwargs)
            except RetriableAPIError as exc:
                raise WhoopAPIError(f"{gave_up}: {exc}. WHOOP is failing; {RUN_AGAIN}.") from exc
            except requests.exceptions.RequestException as exc:
                failure = f"{type(exc).__name__} (unreachable, timeout or dropped connection)"
                msg = (
                    f"{gave_up}: GET {self.url_base}{self.path} failed with {failure}. Check api_url and "
                    f"the network; {RUN_AGAIN}."
                )
                raise WhoopAPIError(msg) from exc

        return call

    def backoff_max_tries(self) -> int:
        return self.retry_max_tries

    def backoff_jitter(self, value: float) -> float:
        return value  # jitter is applied by backoff_wait_generator, only where it helps

    def backoff_wait_generator(self) -> t.Generator[float, t.Any, None]:
        # backoff primes the generator with a bare next() and then sends it each exception; the SDK's
        # annotation of the hook (floats out, nothing in) cannot say so.
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
        if status == HTTPStatus.FORBIDDEN and "deactivated_user" in response.text:
            msg = (
                "WHOOP refuses their data (403 deactivated_user: the WHOOP membership is inactive); the tap "
                "keeps their tokens and tries again next run"
            )
            raise AthleteUnavailable(msg, kind="deactivated")
        if response.request in self._lookups and status in {HTTPStatus.NOT_FOUND, HTTPStatus.BAD_REQUEST}:
            return  # a single-record lookup: fetch_one tells the caller what the answer means
        if status >= HTTPStatus.BAD_REQUEST:
            msg = (
                f"Stream '{self.name}': WHOOP refused the request: {self.response_error_message(response)}. "
                "Check api_url and the app's scopes at developer.whoop.com, then run `tap-whoop auth` if "
                "the athlete's access was revoked"
            )
            raise WhoopAPIError(msg)
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
                f"(pagination loop after {paginator.count} pages): the bookmark was not advanced, and "
                f"{RUN_AGAIN}."
            )
            raise WhoopAPIError(msg)

    def _handle_unauthorized(self, response: requests.Response) -> None:
        request = response.request
        if request in self._reauthenticated_requests:
            msg = (
                f"Stream '{self.name}': GET {self.path} was refused (401 Unauthorized) even with a freshly "
                "refreshed access token. Re-authorize with `tap-whoop auth` and check the app's scopes."
            )
            raise AthleteUnavailable(msg, kind="needs_reauthorization")
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

    def parse_response(self, response: requests.Response) -> Iterable[dict[str, t.Any]]:
        # The SDK's own parse_response would decode the body a second time; reuse the one validation decoded.
        yield from extract_jsonpath(self.records_jsonpath, input=response_payload(response))
