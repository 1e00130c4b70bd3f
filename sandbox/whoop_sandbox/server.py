"""HTTP front of the sandbox: the WHOOP v2 API, WHOOP's OAuth endpoints and the /_sandbox/ control plane."""

from __future__ import annotations

import contextlib
import html
import json
import re
import socket
import traceback
import uuid
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from .data import score_view, to_ms
from .oauth import OAuthError
from .paging import InvalidToken
from .signals import UnknownSignalType, parse_types, sleep_stream

if TYPE_CHECKING:
    from .sandbox import Sandbox

MAX_LIMIT = 25
DEFAULT_LIMIT = 10
MIN_STATE_LENGTH = 8
# Token-endpoint fields that are secrets: never written to the request log.
SECRET_FIELDS = frozenset({"client_secret", "refresh_token", "code", "access_token"})


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


# The resource (add_fields, stop_field) a route without a record kind serves.
HANDLER_RESOURCES = {
    "profile": "profile",
    "body": "body_measurement",
    "cycle_sleep": "sleep",
    "sleep_stream": "sleep_signals",
}
# (pattern, handler name, scope, collection kind or None)
ROUTES = [
    (re.compile(r"/developer/v2/cycle"), "collection", "read:cycles", "cycle"),
    (re.compile(r"/developer/v2/cycle/(?P<id>[^/]+)"), "one", "read:cycles", "cycle"),
    (re.compile(r"/developer/v2/cycle/(?P<id>[^/]+)/sleep"), "cycle_sleep", "read:sleep", None),
    (re.compile(r"/developer/v2/cycle/(?P<id>[^/]+)/recovery"), "one", "read:recovery", "recovery"),
    (re.compile(r"/developer/v2/recovery"), "collection", "read:recovery", "recovery"),
    (re.compile(r"/developer/v2/activity/sleep"), "collection", "read:sleep", "sleep"),
    (re.compile(r"/developer/v2/activity/sleep/(?P<id>[^/]+)"), "one", "read:sleep", "sleep"),
    (re.compile(r"/developer/v2/activity/sleep/(?P<id>[^/]+)/stream"), "sleep_stream", "read:sleep", "sleep"),
    (re.compile(r"/developer/v2/activity/workout"), "collection", "read:workout", "workout"),
    (re.compile(r"/developer/v2/activity/workout/(?P<id>[^/]+)"), "one", "read:workout", "workout"),
    (re.compile(r"/developer/v2/user/profile/basic"), "profile", "read:profile", None),
    (re.compile(r"/developer/v2/user/measurement/body"), "body", "read:body_measurement", None),
    (re.compile(r"/developer/v1/activity-mapping/(?P<id>[^/]+)"), "mapping", None, None),
]


def _parse_time(name: str, value: str) -> int:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ApiError(400, f"{name} must be an ISO 8601 date-time, got {value!r}") from exc
    return to_ms(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, sandbox: Sandbox):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.sandbox = sandbox
        super().__init__(address, Handler)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, keep-alive clients wait ~40 ms per response.
    disable_nagle_algorithm = True
    server_version = "whoop-sandbox/1"
    server: SandboxHTTPServer
    # Set per request in _handle: the request log entry, and whether it has been logged yet.
    _entry: dict[str, Any]
    _recorded: bool

    def log_message(self, format, *args):  # the sandbox keeps its own structured request log
        pass

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_DELETE(self):
        self._dispatch("DELETE")

    # ------------------------------------------------------------------ plumbing
    @property
    def sb(self) -> Sandbox:
        return self.server.sandbox

    def _send(
        self,
        status: int,
        payload,
        headers: dict | None = None,
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> None:
        body = raw if raw is not None else json.dumps(payload).encode()
        self._record(status)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _record(self, status: int | None) -> None:
        # Logged before the response leaves, so a client holding a response always finds its entry in the log.
        if not self._recorded:
            self._recorded = True
            self._entry["status"] = status
            self.sb.record_request(self._entry)

    def _drop(self) -> None:
        # Logged before the connection closes, as a response is before it leaves: a client that saw the drop
        # finds its entry (status None) in the log.
        self._record(None)
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _read_body(self) -> dict:
        raw = self._raw_body
        if not raw:
            return {}
        if (self.headers.get("Content-Type") or "").startswith("application/json"):
            try:
                data = json.loads(raw)
            except ValueError as exc:
                raise ApiError(400, "request body is not valid JSON") from exc
            if not isinstance(data, dict):
                raise ApiError(400, "request body must be a JSON object")
            return data
        return dict(parse_qsl(raw.decode(), keep_blank_values=True))

    def _dispatch(self, method: str) -> None:
        # Read the body before anything can answer early: left unread it would be taken for the next request
        # on this keep-alive connection.
        length = int(self.headers.get("Content-Length") or 0)
        self._raw_body = self.rfile.read(length) if length > 0 else b""
        url = urlsplit(self.path)
        path, params = url.path, dict[str, str]()
        for name, value in parse_qsl(url.query, keep_blank_values=True):
            # A repeated parameter (OpenAPI's exploded arrays: `types=hr&types=skin_temp`) reads as one
            # comma-separated value.
            params[name] = f"{params[name]},{value}" if name in params else value
        self._entry = {
            "method": method,
            "path": path,
            "params": params,
            "status": None,
            "client_id": None,
            "user_id": None,
            "ts": self.sb.clock(),
        }
        self._recorded = False
        if path.startswith("/_sandbox/"):
            self._recorded = True  # the sandbox's own control traffic is not part of the request log
            self._control(method, path.removeprefix("/_sandbox/"))
            return
        try:
            route = self._route(method, path)
            fault = self.sb.faults.take(path, collection=route is not None and route[1] == "collection")
            if fault is not None:
                self._entry["fault"] = fault.kind
                if not self._apply_fault(fault):
                    return
            if path == "/oauth/oauth2/auth" and method == "GET":
                self._authorize(params)
            elif path == "/oauth/oauth2/auth" and method == "POST":
                form = self._read_body()
                self._authorize(form, decision=form.get("decision", "deny"))
            elif path == "/oauth/oauth2/token" and method == "POST":
                self._token()
            elif path == "/developer/v2/user/access" and method == "DELETE":
                self._revoke()
            elif route is None:
                raise ApiError(404, f"no route for {method} {path}")
            else:
                self._api(
                    route,
                    params,
                    loop=fault is not None and fault.kind == "next_token_loop",
                    malformed=fault is not None and fault.kind == "malformed_json",
                )
        except ApiError as exc:
            self._send(
                exc.status, {"error": HTTPStatus(exc.status).phrase, "message": exc.message}, exc.headers
            )
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as exc:  # a sandbox bug: answer 500 and show it, rather than hang the client
            traceback.print_exc()
            self._send(500, {"error": "Internal Server Error", "message": f"sandbox bug: {exc!r}"})
        finally:
            self._record(self._entry["status"])  # dropped or timed-out requests: status None

    def _route(self, method: str, path: str):
        if method != "GET":
            return None
        for pattern, name, scope, kind in ROUTES:
            match = pattern.fullmatch(path)
            if match:
                return match, name, scope, kind
        return None

    def _apply_fault(self, fault) -> bool:
        """Act out a fault; True when the request should still be served (slow, loop, malformed)."""
        kind = fault.kind
        if kind in ("500", "503"):
            status = int(kind)
            self._send(status, {"error": HTTPStatus(status).phrase, "message": "sandbox fault"})
            return False
        if kind == "502":
            page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
            self._send(502, None, raw=page, content_type="text/html")
            return False
        if kind == "slow":
            return not self.sb.stopping.wait(fault.delay)
        if kind in ("timeout", "drop"):
            if kind == "timeout":
                self.sb.stopping.wait(fault.delay)
            self._drop()
            return False
        return True

    # ------------------------------------------------------------------ OAuth
    def _consent_page(self, params: dict) -> None:
        """WHOOP's consent screen in a browser: the request's parameters and an Allow and a Deny button."""
        fields = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in params.items()
        )
        athlete = self.sb.athletes[self.sb.consent_athlete]
        page = (
            "<!doctype html><title>WHOOP sandbox: authorize</title>"
            f"<h1>Allow this app to read {html.escape(athlete.profile['first_name'])}'s WHOOP data?</h1>"
            f'<form method="post" action="/oauth/oauth2/auth">{fields}'
            '<button name="decision" value="allow" id="allow">Allow</button>'
            '<button name="decision" value="deny" id="deny">Deny</button></form>'
        ).encode()
        self._send(200, None, raw=page, content_type="text/html; charset=utf-8")

    def _authorize(self, params: dict, decision: str | None = None) -> None:
        client_id, redirect_uri = params.get("client_id"), params.get("redirect_uri")
        if client_id not in self.sb.oauth.apps or not redirect_uri:
            self._entry["client_id"] = client_id if client_id in self.sb.oauth.apps else None
            raise ApiError(400, "invalid_client: unknown client_id or missing redirect_uri")
        self._entry["client_id"] = client_id
        state = params.get("state", "")
        query = {"state": state}
        try:
            if params.get("response_type") != "code":
                raise OAuthError(
                    400,
                    "unsupported_response_type",
                    "The authorization server only supports response_type=code.",
                )
            if len(state) < MIN_STATE_LENGTH:
                raise OAuthError(
                    400,
                    "invalid_state",
                    "The state is missing or does not have enough characters "
                    "and is therefore considered too weak.",
                )
            athlete = int(params.get("sandbox_athlete", self.sb.consent_athlete))
            self.sb._athlete(athlete)
            self._entry["user_id"] = self.sb.athletes[athlete].user_id
            decision = decision or self.sb.consent
            if decision == "page":
                self._consent_page(params)
                return
            if decision != "allow":
                raise OAuthError(403, "access_denied", "The resource owner denied the request.")
            query["code"] = self.sb.oauth.authorize(client_id, redirect_uri, params.get("scope", ""), athlete)
        except OAuthError as exc:
            query.update(error=exc.error, error_description=exc.description)
        except ValueError:
            query.update(error="access_denied", error_description="unknown sandbox athlete")
        location = redirect_uri + ("&" if "?" in redirect_uri else "?") + urlencode(query)
        self._send(302, {"redirect": location}, {"Location": location})

    def _token(self) -> None:
        form = self._read_body()
        self._entry["params"] = {k: ("<redacted>" if k in SECRET_FIELDS else v) for k, v in form.items()}
        self._entry["client_id"] = form.get("client_id")
        oauth = self.sb.oauth
        try:
            app = oauth.check_client(form.get("client_id"), form.get("client_secret"))
            grant_type = form.get("grant_type")
            if grant_type == "refresh_token":
                grant = oauth.refresh(app, form.get("refresh_token"))
            elif grant_type == "authorization_code":
                grant = oauth.exchange_code(app, form.get("code"), form.get("redirect_uri"))
            else:
                raise OAuthError(
                    400,
                    "unsupported_grant_type",
                    "The authorization grant type is not supported by the authorization server.",
                )
        except OAuthError as exc:
            self._send(exc.status, exc.payload(), {"Cache-Control": "no-store"})
            return
        self._entry["user_id"] = self.sb.athletes[grant.athlete].user_id
        body = oauth.token_response(grant, oauth.access_token_ttl)
        self._send(200, body, {"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _authenticate(self, scope: str | None):
        """(grant, rate-limit headers) for the bearer token, or ApiError 401/429."""
        header = self.headers.get("Authorization") or ""
        kind, _, token = header.partition(" ")
        grant = self.sb.oauth.lookup(token.strip()) if kind.lower() == "bearer" else None
        if grant is None:
            raise ApiError(
                401, "Authorization was not valid", {"WWW-Authenticate": 'Bearer error="invalid_token"'}
            )
        self._entry["client_id"] = grant.client_id
        self._entry["user_id"] = self.sb.athletes[grant.athlete].user_id
        allowed, limit_headers = self.sb.rate_limiter.hit(grant.client_id, self._entry)
        if not allowed:
            raise ApiError(429, "Rate limit exceeded", limit_headers)
        if self.sb.oauth.expired(grant):
            raise ApiError(
                401,
                "Authorization has expired",
                {**limit_headers, "WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        if scope is not None and scope not in grant.scopes:
            raise ApiError(
                401,
                f"Token lacks the {scope} scope",
                {**limit_headers, "WWW-Authenticate": 'Bearer error="insufficient_scope"'},
            )
        return grant, limit_headers

    def _revoke(self) -> None:
        # WHOOP revokes the athlete's whole authorization of the app, not just this token.
        grant, headers = self._authenticate(None)
        self.sb.oauth.revoke_athlete(grant.client_id, grant.athlete)
        self._record(204)
        self.send_response(204)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    # ------------------------------------------------------------------ API
    def _api(self, route, params: dict, loop: bool, malformed: bool) -> None:
        match, name, scope, kind = route
        grant, headers = self._authenticate(scope)
        athlete = self.sb.athletes[grant.athlete]
        if grant.athlete in self.sb.deactivated:
            self._send(403, {"error": "deactivated_user"}, headers)
            return
        try:
            # Encoded under the lock: changes made meanwhile must not show up half-applied.
            with self.sb._lock:
                payload = getattr(self, "_api_" + name)(athlete, kind, match, params, loop)
                resource = HANDLER_RESOURCES.get(name, kind)
                if isinstance(payload, str):  # a signal stream, encoded as generated (a night at 1 s is big)
                    touched = resource is not None and self.sb.fields.touches(resource)
                    text = json.dumps(self.sb.served(resource, json.loads(payload))) if touched else payload
                else:
                    text = json.dumps(self.sb.served(resource, payload) if resource else payload)
        except ApiError as exc:
            exc.headers = {**headers, **exc.headers}
            raise
        if malformed:
            text = text[: max(1, len(text) // 2)]
        self._send(200, None, headers, raw=text.encode())

    def _api_collection(self, athlete, kind, match, params, loop) -> dict:
        unknown = set(params) - {"limit", "start", "end", "nextToken"}
        if unknown:
            raise ApiError(400, f"unknown query parameters: {sorted(unknown)}")
        try:
            limit = int(params.get("limit", DEFAULT_LIMIT))
        except ValueError as exc:
            raise ApiError(400, "limit must be an integer") from exc
        if not 1 <= limit <= MAX_LIMIT:
            raise ApiError(400, f"limit must be between 1 and {MAX_LIMIT}")
        start = _parse_time("start", params["start"]) if params.get("start") else None
        end = _parse_time("end", params["end"]) if params.get("end") else self.sb.clock_ms()
        token = params.get("nextToken") or None
        after = None
        if token is not None:
            try:
                after, _ = self.sb.tokens.decode(kind, token)
            except InvalidToken as exc:
                raise ApiError(400, str(exc)) from exc
        records, more = athlete.records[kind].query(start, end, after, limit)
        body: dict = {"records": [score_view(r) for r in records]}
        if token is not None and token in self.sb.loop_tokens:
            body["next_token"] = token
        elif loop:
            # The broken server: a next_token that leads back to this very page, forever.
            looping = self.sb.tokens.encode(kind, after, loop=uuid.uuid4().int % 10**9)
            self.sb.loop_tokens.add(looping)
            body["next_token"] = looping
        elif more:
            body["next_token"] = self.sb.tokens.encode(kind, records[-1].sort_key)
        return body

    def _api_one(self, athlete, kind, match, params, loop) -> dict:
        key = match["id"]
        if kind in ("cycle", "recovery"):
            if not key.isdigit():
                raise ApiError(400, "cycleId must be an integer")
        else:
            try:
                key = str(uuid.UUID(key))
            except ValueError as exc:
                raise ApiError(400, f"{kind}Id must be a UUID") from exc
        record = self.sb.find(kind, key)
        if record is None or record.athlete != athlete.index:
            raise ApiError(404, f"No {kind} found")
        return score_view(record)

    def _api_sleep_stream(self, athlete, kind, match, params, loop) -> str:
        unknown = set(params) - {"types"}
        if unknown:
            raise ApiError(400, f"unknown query parameters: {sorted(unknown)}")
        try:
            types = parse_types(params.get("types"))
        except UnknownSignalType as exc:
            raise ApiError(400, str(exc)) from exc
        try:
            key = str(uuid.UUID(match["id"]))
        except ValueError as exc:
            raise ApiError(400, "sleepId must be a UUID") from exc
        sleep = self.sb.find("sleep", key)
        if sleep is None or sleep.athlete != athlete.index:
            raise ApiError(404, "No sleep found")
        return sleep_stream(sleep, self.sb.signal_interval, types)

    def _api_cycle_sleep(self, athlete, kind, match, params, loop) -> dict:
        if not match["id"].isdigit():
            raise ApiError(400, "cycleId must be an integer")
        cycle_id = int(match["id"])
        recovery = athlete.records["recovery"].by_key.get(cycle_id)
        sleep = athlete.records["sleep"].by_key.get(recovery.body["sleep_id"]) if recovery else None
        if sleep is None:
            sleep = next(
                (
                    r
                    for r in athlete.records["sleep"].items
                    if r.body["cycle_id"] == cycle_id and not r.body["nap"]
                ),
                None,
            )
        if sleep is None:
            raise ApiError(404, "No sleep found for cycle")
        return score_view(sleep)

    def _api_profile(self, athlete, kind, match, params, loop) -> dict:
        return dict(athlete.profile)

    def _api_body(self, athlete, kind, match, params, loop) -> dict:
        return dict(athlete.body)

    def _api_mapping(self, athlete, kind, match, params, loop) -> dict:
        if not match["id"].isdigit():
            raise ApiError(400, "activityV1Id must be an integer")
        v1 = int(match["id"])
        for kind_name in ("sleep", "workout"):
            for record in athlete.records[kind_name].items:
                if record.body.get("v1_id") == v1:
                    return {"v2_activity_id": record.key}
        raise ApiError(404, "Activity mapping not found")

    # ------------------------------------------------------------------ control plane
    def _control(self, method: str, operation: str) -> None:
        sb = self.sb
        try:
            if method == "GET" and operation == "log":
                self._send(200, {"requests": sb.request_log})
            elif method == "GET" and operation == "webhooks":
                self._send(200, {"events": sb.webhooks.events, "deliveries": sb.webhooks.log})
            elif method == "GET" and operation == "info":
                self._send(
                    200,
                    {
                        "base_url": sb.base_url,
                        "api_url": sb.api_url,
                        "token_url": sb.token_url,
                        "auth_url": sb.auth_url,
                        "client_id": sb.client_id,
                        "athletes": [a.user_id for a in sb.athletes],
                        "now": sb.clock_ms(),
                        "faults": sb.faults.pending(),
                    },
                )
            elif method == "POST" and operation in sb.CONTROL_OPERATIONS:
                kwargs = self._read_body()
                result = getattr(sb, operation)(**kwargs)
                self._send(200, {"result": result})
            else:
                self._send(
                    404, {"error": "Not Found", "message": f"no control operation {method} {operation}"}
                )
        except (TypeError, ValueError, KeyError) as exc:
            self._send(400, {"error": "Bad Request", "message": str(exc)})
        except ApiError as exc:
            self._send(exc.status, {"error": HTTPStatus(exc.status).phrase, "message": exc.message})
