"""`POST /webhooks/whoop`: WHOOP's webhook deliveries, verified, stored durably, then acknowledged.

In this order, storing nothing unless every step passes:
1. a body over 64 KiB → 413 (read no further than that); a body not all there within 10 s → 408;
2. `X-WHOOP-Signature` must be base64(HMAC-SHA256(client secret, `X-WHOOP-Signature-Timestamp` + raw body)),
   compared in constant time, and the timestamp (epoch ms, 1 to 16 ASCII digits) within 5 minutes of now
   → else 401;
3. the body must be a WHOOP v2 event (`tap_whoop.deletions.events`), storable by every event log → else 400;
4. the event is appended to the app's event log, durably, before the answer: 200 `stored`, or 200 `duplicate`
   when its trace_id is already there (WHOOP retries and duplicates); a store failure is 503 so WHOOP retries.
Nothing here calls WHOOP: the tap acts on the events on its next run. One log line per delivery says the type,
user_id, trace_id and outcome, never the body or the signature.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import logging
import threading
import time
import typing as t

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse
from starlette.routing import Route

from tap_whoop.deletions.events import InvalidEvent, WebhookEvent
from tap_whoop.service.logs import printable
from tap_whoop.service.server import LIMITS
from tap_whoop.stores import open_event_log
from tap_whoop.stores.events.log import RETENTION_DAYS, EventLog, EventLogError

if t.TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from starlette.requests import Request

PATH = "/webhooks/whoop"
MAX_BODY_BYTES = 64 * 1024
MAX_CLOCK_SKEW_SECONDS = 300
SIGNATURE_HEADER = "X-WHOOP-Signature"
TIMESTAMP_HEADER = "X-WHOOP-Signature-Timestamp"
PRUNE_EVERY_SECONDS = 24 * 3600
# Epoch milliseconds have 13 digits until the year 2286; more than 16 is no timestamp, and bounds int().
MAX_TIMESTAMP_DIGITS = 16
# An early answer ends the connection, so the rest of a body never sent (or sent slowly) is not waited for.
CLOSE = {"Connection": "close"}

logger = logging.getLogger("tap-whoop.webhooks")


def signature(secret: str, timestamp: str, body: bytes) -> bytes:
    """WHOOP's signature of a delivery: HMAC-SHA256 over the timestamp header followed by the raw body."""
    return hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()


class _Rejected(Exception):
    def __init__(self, status: int, reason: str, headers: Mapping[str, str] | None = None):
        super().__init__(reason)
        self.status, self.reason, self.headers = status, reason, headers


class WebhookReceiver:
    """The endpoint for one WHOOP app: its client secret verifies, its event log stores."""

    def __init__(
        self,
        secret: str,
        events: EventLog,
        clock: Callable[[], float] = time.time,
        body_timeout: float = LIMITS.body_seconds,
    ) -> None:
        self._secret = secret
        self.events = events
        self._clock = clock
        self._body_timeout = body_timeout
        self._prune_lock = threading.Lock()
        self._pruned_at: float | None = None

    async def handle(self, request: Request) -> JSONResponse:
        try:
            body = await self._read_body(request)
            self._verify(request, body)
            event = self._parse(body)
        except _Rejected as exc:
            logger.info("webhook type=- user_id=- trace_id=- outcome=rejected (%s)", exc.reason)
            return JSONResponse({"error": exc.reason}, status_code=exc.status, headers=exc.headers)
        received_at = dt.datetime.fromtimestamp(self._clock(), dt.UTC)
        try:
            stored = await run_in_threadpool(self.events.append, event, received_at)
        except EventLogError as exc:
            logger.error(
                "webhook type=%s user_id=%s trace_id=%s outcome=failed (%s)",
                event.type, event.user_id, printable(event.trace_id), printable(str(exc)),
            )  # fmt: skip
            return JSONResponse({"error": "the event could not be stored; retry later"}, status_code=503)
        outcome = "stored" if stored else "duplicate"
        logger.info(
            "webhook type=%s user_id=%s trace_id=%s outcome=%s",
            event.type,
            event.user_id,
            printable(event.trace_id),
            outcome,
        )
        return JSONResponse({"status": outcome}, background=BackgroundTask(self._prune_if_due))

    async def _read_body(self, request: Request) -> bytes:
        too_large = _Rejected(413, f"body larger than {MAX_BODY_BYTES} bytes", CLOSE)
        declared = request.headers.get("content-length")
        if declared is not None and (
            not (declared.isascii() and declared.isdigit()) or int(declared) > MAX_BODY_BYTES
        ):
            raise too_large
        body = bytearray()
        try:
            async with asyncio.timeout(self._body_timeout):
                async for chunk in request.stream():
                    body += chunk
                    if len(body) > MAX_BODY_BYTES:
                        raise too_large
        except TimeoutError:
            raise _Rejected(408, f"body not received within {self._body_timeout:g} seconds", CLOSE) from None
        return bytes(body)

    def _verify(self, request: Request, body: bytes) -> None:
        provided, timestamp = request.headers.get(SIGNATURE_HEADER), request.headers.get(TIMESTAMP_HEADER)
        if not provided or not timestamp:
            raise _Rejected(401, f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER}")
        # isdigit() alone also passes digits int() refuses (²) or that make a float overflow (10**400).
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= MAX_TIMESTAMP_DIGITS):
            raise _Rejected(401, f"{TIMESTAMP_HEADER} is not epoch milliseconds")
        if abs(self._clock() - int(timestamp) / 1000) > MAX_CLOCK_SKEW_SECONDS:
            raise _Rejected(
                401, f"{TIMESTAMP_HEADER} is more than {MAX_CLOCK_SKEW_SECONDS // 60} minutes from now"
            )
        try:
            claimed = base64.b64decode(provided, validate=True)
        except (binascii.Error, ValueError):
            claimed = b""
        if not hmac.compare_digest(claimed, signature(self._secret, timestamp, body)):
            raise _Rejected(401, "signature does not match (is client_secret the webhook app's?)")

    @staticmethod
    def _parse(body: bytes) -> WebhookEvent:
        try:
            payload = json.loads(body)
        except ValueError:
            raise _Rejected(400, "body is not valid JSON") from None
        except RecursionError:  # 64 KiB of brackets nests deeper than the parser goes
            raise _Rejected(400, "body nests too deeply to be a WHOOP event") from None
        try:
            return WebhookEvent.from_payload(payload)
        except InvalidEvent as exc:
            raise _Rejected(400, f"not a WHOOP v2 webhook event: {exc}") from None

    def _prune_if_due(self) -> None:
        """Drop events past the retention, at most once a day (after answering, never delaying one)."""
        now = self._clock()
        if not self._prune_lock.acquire(blocking=False):
            return
        try:
            if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY_SECONDS:
                return
            self._pruned_at = now
            before = dt.datetime.fromtimestamp(now, dt.UTC) - dt.timedelta(days=RETENTION_DAYS)
            try:
                dropped = self.events.prune(before)
            except EventLogError as exc:
                logger.warning("Could not prune the event log: %s", exc)
                return
            if dropped:
                logger.info(
                    "Pruned %d webhook events older than %d days from %s.",
                    dropped,
                    RETENTION_DAYS,
                    self.events.location,
                )
        finally:
            self._prune_lock.release()


def routes(config: Mapping[str, t.Any], body_timeout: float = LIMITS.body_seconds) -> list[Route]:
    """The webhook route for a complete tap config (client_id and client_secret, token_store)."""
    events = open_event_log(config.get("token_store"), str(config["client_id"]))
    events.prepare()
    receiver = WebhookReceiver(str(config["client_secret"]), events, body_timeout=body_timeout)
    return [Route(PATH, receiver.handle, methods=["POST"])]
