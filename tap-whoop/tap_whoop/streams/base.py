"""The base stream of every WHOOP endpoint: its URL, its athlete, its pages, its schema; every request goes
through the run's one WHOOP client (`tap_whoop.client.api`), which paces, retries and classifies it, and every
record keeps the fields WHOOP adds (`tap_whoop.streams.unmodelled`)."""

from __future__ import annotations

import time
import typing as t
from http import HTTPStatus
from importlib import resources

import requests
from singer_sdk.helpers.jsonpath import extract_jsonpath
from singer_sdk.schema.source import SchemaDirectory, StreamSchema
from singer_sdk.streams import Stream

from tap_whoop.client.api import describe
from tap_whoop.client.pagination import next_token, response_payload
from tap_whoop.client.retries import TryAgain
from tap_whoop.errors import RUN_AGAIN, RecordLookupRefused, WhoopAPIError
from tap_whoop.sdk import SdkStreamHooks
from tap_whoop.streams import unmodelled

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from singer_sdk.helpers.types import Context, Record, RequestFunc

    from tap_whoop.athletes.registry import AthleteRegistry
    from tap_whoop.auth.authenticator import WhoopAuthenticator
    from tap_whoop.client.api import WhoopClient
    from tap_whoop.client.pacing import RateLimitPacer
    from tap_whoop.deletions.feed import EventFeed


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
    def client(self) -> WhoopClient: ...

    @property
    def event_feed(self) -> EventFeed: ...

    @property
    def streams(self) -> Mapping[str, Stream]: ...

    @property
    def initialized_at(self) -> int: ...


class OfTheRun(Stream):
    """A stream that reaches the run it belongs to (as `run`), not only the SDK's Tap."""

    def __init__(self, tap: t.Any, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(tap, *args, **kwargs)
        self.run: WhoopRun = tap


class WhoopSchemas(SchemaDirectory):
    """tap_whoop/schemas/<stream name>.json, each with `unmodelled_fields` declared: every WHOOP stream has
    it, whichever file its schema comes from."""

    def fetch_schema(self, key: str) -> dict[str, t.Any]:
        return unmodelled.declare(super().fetch_schema(key))


class WhoopStream(OfTheRun, SdkStreamHooks):
    """A WHOOP API v2 endpoint, read for one athlete at a time: the context is `{"user_id": ...}`."""

    # False for streams about the app as a whole (synced once per run, without a context).
    per_athlete: bool = True

    records_jsonpath = "$.records[*]"
    # When profile, body and sweeps fall due: replaceable, so a test or benchmark can run days in seconds.
    clock: t.Callable[[], float] = staticmethod(time.time)
    # tap_whoop/schemas/<stream name>.json, generated from WHOOP's OpenAPI spec by scripts/generate_schemas.py
    schema = StreamSchema(WhoopSchemas(resources.files("tap_whoop") / "schemas"))

    def __init_subclass__(cls, **kwargs: t.Any) -> None:
        super().__init_subclass__(**kwargs)
        # A stream whose schema is written in code rather than a file of schemas/ declares the column too.
        own = cls.__dict__.get("schema")
        if isinstance(own, dict):
            cls.schema = unmodelled.declare(own)  # type: ignore[assignment]

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.unmodelled = unmodelled.UnmodelledFields()

    def record_to_write(self, record: Record) -> Record:
        # The schema the SDK conforms to next (the catalog's, when one was given): what it lacks is kept.
        kept, new = self.unmodelled.keep(record, self.effective_schema)
        for path in new:
            self.logger.warning(
                "%s: WHOOP sends `%s`, which this tap does not model; its values are kept in %s (%s)",
                self.name,
                path,
                unmodelled.COLUMN,
                f"stg_whoop__{self.name}.{unmodelled.COLUMN}",
            )
        return kept

    @property
    def url_base(self) -> str:
        return self.client.api_url

    @property
    def authenticator(self) -> WhoopAuthenticator:
        # The athlete whose partition is being synced: one authenticator per athlete, shared by streams.
        user_id = (self._partition_context or self.context or {}).get("user_id")
        if user_id is None:
            raise RuntimeError(f"Stream '{self.name}' was asked for data without an athlete context")
        return self.run.athlete_authenticator(int(user_id))

    _partition_context: t.Mapping[str, t.Any] | None = None

    @property
    def partitions(self) -> list[dict[str, t.Any]] | None:
        # A sync without a context (the SDK's dry run) covers every enrolled athlete.
        return self.run.athlete_contexts() if self.per_athlete else None

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

    _schema_written = False

    def schema_message_due(self) -> bool:
        # Once per run: a stream is synced once per athlete, and some targets flush on every SCHEMA message.
        due, self._schema_written = not self._schema_written, True
        return due

    @property
    def pacer(self) -> RateLimitPacer:
        return self.run.pacer

    @property
    def client(self) -> WhoopClient:
        return self.run.client

    @property
    # The SDK annotates whole seconds (int); the client's (connect, read) timeout is what requests takes.
    def timeout(self) -> tuple[float, float]:  # type: ignore[override]
        return self.client.timeout

    @property
    def prefix(self) -> str:
        return f"Stream '{self.name}': "

    def fetch_one(
        self, path: str, context: Context | None, params: Mapping[str, t.Any] | None = None
    ) -> dict[str, t.Any] | None:
        """GET one record (`path` under the API base, e.g. `/v2/cycle/123`, with query `params`) through the
        run's client with this stream's athlete. None when WHOOP answers 404 (no such record: the only answer
        that confirms a deletion); RecordLookupRefused on 400."""
        user_id = (context or {}).get("user_id")
        authenticator = (
            self.authenticator if user_id is None else self.run.athlete_authenticator(int(user_id))
        )
        request = requests.Request(
            "GET", self.url_base + path, headers=self.http_headers, params=params
        ).prepare()
        response = self.client.send(
            request,
            authenticator,
            answers={HTTPStatus.NOT_FOUND, HTTPStatus.BAD_REQUEST},
            what=self.prefix,
        )
        if response.status_code == HTTPStatus.NOT_FOUND:
            return None
        if response.status_code == HTTPStatus.BAD_REQUEST:
            raise RecordLookupRefused(describe(response))
        payload = response_payload(response)
        return payload if isinstance(payload, dict) else None

    def request_decorator(self, func: RequestFunc) -> RequestFunc:
        # The SDK's hook for retries: the run's client takes over, with the SDK's own send (which
        # authenticates each attempt and records its metrics) as the transport.
        def send(request: requests.PreparedRequest, context: Context | None) -> requests.Response:
            return self.client.send(
                request, self.authenticator, transport=lambda r: func(r, context), what=self.prefix
            )

        return send

    def validate_response(self, response: requests.Response) -> None:
        # The client classifies statuses; a page must also be a JSON object whose next_token goes somewhere.
        status = response.status_code
        if status >= HTTPStatus.BAD_REQUEST:
            return
        try:
            payload = response_payload(response)
        except ValueError as exc:
            msg = f"malformed JSON from GET {self.path} (HTTP {status}): {exc}"
            raise TryAgain(msg, response) from exc
        if not isinstance(payload, dict):
            msg = f"malformed JSON from GET {self.path} (HTTP {status}): expected an object"
            raise TryAgain(msg, response)
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

    def response_error_message(self, response: requests.Response) -> str:
        return describe(response)

    def parse_response(self, response: requests.Response) -> Iterable[dict[str, t.Any]]:
        # The SDK's own parse_response would decode the body a second time; reuse the one validation decoded.
        yield from extract_jsonpath(self.records_jsonpath, input=response_payload(response))
