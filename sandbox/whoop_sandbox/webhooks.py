"""WHOOP's webhooks: an event per change, POSTed signed to the app's webhook URL, with WHOOP's retries.

WHOOP's contract (developer.whoop.com/docs/developing/webhooks, v2 model): the body is
`{"user_id", "id", "type", "trace_id"}`, where `id` is the sleep or workout UUID and, for `recovery.*`,
the UUID of the recovery's sleep; `X-WHOOP-Signature` is base64(HMAC-SHA256(client secret,
`X-WHOOP-Signature-Timestamp` + raw body)), the timestamp in epoch milliseconds. A delivery not answered
2xx in time is retried (5 times over about an hour at WHOOP; `retry_delays` scales that down for tests).
Duplicates happen (same `trace_id`), and so do lost deliveries: both can be asked for with `inject`.

Deliveries run on worker threads of their own, in real time (not on the sandbox clock: they are network
traffic).
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

EVENT_TYPES = (
    "workout.updated",
    "workout.deleted",
    "sleep.updated",
    "sleep.deleted",
    "recovery.updated",
    "recovery.deleted",
)
# WHOOP retries a failed delivery 5 times over about an hour.
WHOOP_RETRY_DELAYS = (60.0, 240.0, 600.0, 1200.0, 1500.0)
WEBHOOK_FAULT_KINDS = frozenset({"drop", "duplicate"})


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """WHOOP's signature: base64(HMAC-SHA256(key = client secret, message = timestamp + raw body))."""
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@dataclass(frozen=True)
class WebhookEvent:
    user_id: int
    id: str
    type: str
    trace_id: str

    def body(self) -> dict:
        return {"user_id": self.user_id, "id": self.id, "type": self.type, "trace_id": self.trace_id}


@dataclass
class _Fault:
    kind: str
    remaining: int
    type_prefix: str


@dataclass(order=True)
class _Delivery:
    due: float
    number: int
    event: WebhookEvent = field(compare=False)
    attempt: int = field(default=1, compare=False)


class WebhookSender:
    """Queues events and delivers them to the configured URL (nothing goes out until one is configured)."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self._clock = clock  # what X-WHOOP-Signature-Timestamp says (epoch seconds)
        self._lock = threading.Condition()
        self._queue: list[_Delivery] = []
        self._numbers = itertools.count()
        self._in_flight = 0
        self._faults: list[_Fault] = []
        self._events: list[dict] = []
        self._log: list[dict] = []
        self._workers: list[threading.Thread] = []
        self._stopping = False
        self.url: str | None = None
        self.secret = ""
        self.retry_delays: tuple[float, ...] = WHOOP_RETRY_DELAYS
        self.timeout = 1.0

    # ------------------------------------------------------------------ configuration
    def configure(
        self,
        url: str,
        secret: str,
        retry_delays: tuple[float, ...] | list[float] | None = None,
        timeout: float = 1.0,
        concurrency: int = 4,
    ) -> None:
        """Deliver to `url` from now on (events queued before are delivered too)."""
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook url must be http(s), got {url!r}")
        if concurrency < 1 or timeout <= 0:
            raise ValueError("concurrency must be at least 1 and timeout positive")
        delays = tuple(float(d) for d in (WHOOP_RETRY_DELAYS if retry_delays is None else retry_delays))
        if any(d < 0 for d in delays):
            raise ValueError("retry delays must not be negative")
        with self._lock:
            self.url, self.secret, self.retry_delays, self.timeout = url, secret, delays, float(timeout)
            self._stopping = False
            while len(self._workers) < concurrency:
                worker = threading.Thread(target=self._work, name="whoop-sandbox-webhooks", daemon=True)
                self._workers.append(worker)
                worker.start()
            self._lock.notify_all()

    def inject(self, kind: str, count: int = 1, type_prefix: str = "") -> dict:
        """The next `count` events whose type starts with `type_prefix` are dropped (never delivered, as when
        WHOOP loses one) or duplicated (delivered twice with the same trace_id)."""
        if kind not in WEBHOOK_FAULT_KINDS:
            raise ValueError(f"unknown webhook fault {kind!r}; expected one of {sorted(WEBHOOK_FAULT_KINDS)}")
        if count < 1:
            raise ValueError("count must be at least 1")
        fault = _Fault(kind, count, type_prefix)
        with self._lock:
            self._faults.append(fault)
        return vars(fault).copy()

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        for worker in self._workers:
            worker.join(timeout=10)
        self._workers.clear()

    # ------------------------------------------------------------------ events
    def emit(self, user_id: int, record_id: str, event_type: str, trace_id: str | None = None) -> dict:
        """A new event: recorded in `events`, then delivered (unless a drop fault takes it)."""
        if event_type not in EVENT_TYPES:
            raise ValueError(f"unknown webhook type {event_type!r}; expected one of {EVENT_TYPES}")
        event = WebhookEvent(int(user_id), str(record_id), event_type, trace_id or str(uuid.uuid4()))
        with self._lock:
            fault = self._take_fault(event_type)
            copies = 0 if fault == "drop" else 2 if fault == "duplicate" else 1
            self._events.append({**event.body(), "fault": fault})
            now = time.monotonic()
            for _ in range(copies):
                heapq.heappush(self._queue, _Delivery(now, next(self._numbers), event))
            if fault == "drop":
                self._log.append({**event.body(), "attempt": 0, "status": None, "outcome": "dropped"})
            self._lock.notify_all()
        return {**event.body(), "fault": fault}

    def _take_fault(self, event_type: str) -> str | None:
        for fault in self._faults:
            if event_type.startswith(fault.type_prefix):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault.kind
        return None

    @property
    def events(self) -> list[dict]:
        """Every event emitted so far, in order (`fault` says whether it was dropped or duplicated)."""
        with self._lock:
            return [dict(e) for e in self._events]

    @property
    def log(self) -> list[dict]:
        """One entry per delivery attempt: the event, `attempt`, `status` (None: no answer) and `outcome`
        (`delivered`, `retrying`, `gave_up`, `dropped`), plus `error` when there was no HTTP answer."""
        with self._lock:
            return [dict(e) for e in self._log]

    def acknowledged(self) -> set[str]:
        """trace_ids of the events the receiver answered 2xx at least once."""
        with self._lock:
            return {e["trace_id"] for e in self._log if e["outcome"] == "delivered"}

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until nothing is queued or in flight (retries included); False if `timeout` ran out first."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._queue or self._in_flight:
                if self.url is None and not self._in_flight:
                    return False  # nothing can be delivered without a URL
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 0.1))
            return True

    # ------------------------------------------------------------------ delivery
    def _work(self) -> None:
        while True:
            with self._lock:
                while True:
                    if self._stopping:
                        return
                    now = time.monotonic()
                    url = self.url
                    if url is not None and self._queue and self._queue[0].due <= now:
                        delivery = heapq.heappop(self._queue)
                        break
                    wait = (self._queue[0].due - now) if self._queue and url else 0.5
                    self._lock.wait(max(0.001, min(wait, 0.5)))
                self._in_flight += 1
                secret, timeout, delays = self.secret, self.timeout, self.retry_delays
            try:
                status, error = self._post(url, secret, timeout, delivery.event)
            finally:
                with self._lock:
                    self._in_flight -= 1
                    self._finish(delivery, status, error, delays)
                    self._lock.notify_all()

    def _finish(self, delivery: _Delivery, status: int | None, error: str | None, delays) -> None:
        entry = {**delivery.event.body(), "attempt": delivery.attempt, "status": status, "ts": time.time()}
        if error:
            entry["error"] = error
        if status is not None and 200 <= status < 300:
            entry["outcome"] = "delivered"
        elif delivery.attempt <= len(delays):
            entry["outcome"] = "retrying"
            delivery.due = time.monotonic() + delays[delivery.attempt - 1]
            delivery.attempt += 1
            heapq.heappush(self._queue, delivery)
        else:
            entry["outcome"] = "gave_up"
        self._log.append(entry)

    def _post(
        self, url: str, secret: str, timeout: float, event: WebhookEvent
    ) -> tuple[int | None, str | None]:
        body = json.dumps(event.body()).encode()
        timestamp = str(int(self._clock() * 1000))
        request = urllib.request.Request(  # noqa: S310 - configure() admits http(s) URLs only
            url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "whoop-sandbox-webhooks/1",
                "X-WHOOP-Signature": sign(secret, timestamp, body),
                "X-WHOOP-Signature-Timestamp": timestamp,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - configured URL
                response.read()
                return response.status, None
        except urllib.error.HTTPError as exc:
            return exc.code, None
        except (urllib.error.URLError, OSError) as exc:  # refused, reset, timed out: no answer
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            return None, f"{type(reason).__name__}: {reason}"
