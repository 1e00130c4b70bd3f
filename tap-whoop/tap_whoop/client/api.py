"""The one client of every call to WHOOP: collection pages, profile and body, lookups by id, revoke, tokens.

Every API call goes through `WhoopClient.send`: paced by the app's pacer before each attempt, authenticated
afresh on each attempt, retried by the one `RetryPolicy`, and its answer classified once:

- 5xx, a dropped connection, a malformed page: tried again with backoff, then `WhoopAPIError` (transient);
- 429: waited out by the pacer, then tried again;
- 401: the access token is refreshed once, then `WhoopAPIError` (needs_reauthorization);
- 403 `deactivated_user`: `WhoopAPIError` (deactivated);
- statuses the caller reads itself (`answers`, e.g. 404 for a lookup that confirms a deletion): returned;
- any other refusal: `WhoopAPIError` naming the fix (404 means the api_url is wrong).

The token endpoint (`token_request`) has its own outcomes, since WHOOP rotates a refresh token the moment it
accepts one: only a request WHOOP certainly did not act on (never sent, or answered 429 or 503) is sent again,
under the same policy.
"""

from __future__ import annotations

import logging
import typing as t
from http import HTTPStatus
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from tap_whoop.client.retries import DROPPED, RetryPolicy, TryAgain
from tap_whoop.errors import (
    CONSENT_AGAIN,
    RUN_AGAIN,
    Failure,
    TokenRequestNotSent,
    TokenRequestRejected,
    TokenRequestUncertain,
    WhoopAPIError,
)

if t.TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    from tap_whoop.client.pacing import RateLimitPacer


class Authenticator(t.Protocol):
    """What the client needs of an athlete's authenticator (`tap_whoop.auth.authenticator`)."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest: ...

    def handle_unauthorized(self, rejected_access_token: str) -> None: ...


Transport = t.Callable[[requests.PreparedRequest], requests.Response]


def describe(response: requests.Response) -> str:
    """`GET /path failed with HTTP 503 Service Unavailable: <body excerpt>`: path only (a query string may
    name dates; the Authorization header is never shown)."""
    method = response.request.method
    path = urlsplit(response.url).path
    body = " ".join(response.text[:200].split()) if response.content else ""
    msg = f"{method} {path} failed with HTTP {response.status_code} {response.reason}"
    return f"{msg}: {body}" if body else msg


class WhoopClient:
    """Every call of one run (or command) to one WHOOP app: shares the app's pacer and one session."""

    # Class-wide so a test shrinks every wait at once.
    policy: t.ClassVar[RetryPolicy] = RetryPolicy()

    def __init__(
        self,
        api_url: str,
        pacer: RateLimitPacer | None = None,
        session: requests.Session | None = None,
        logger: logging.Logger | None = None,
    ):
        self.api_url = api_url.rstrip("/")
        self.pacer = pacer
        self.session = session or requests.Session()
        self.logger = logger or logging.getLogger("tap-whoop")

    @classmethod
    def for_config(
        cls,
        config: Mapping[str, t.Any],
        pacer: RateLimitPacer | None = None,
        logger: logging.Logger | None = None,
    ) -> WhoopClient:
        return cls(str(config["api_url"]), pacer, logger=logger)

    @property
    def timeout(self) -> tuple[float, float]:
        return self.policy.timeout

    # -- API calls
    # ----------------------------------------------------------------------------------------

    def request(self, method: str, path: str, authenticator: Authenticator) -> requests.Response:
        """One call outside a stream's pages (`path` under api_url), e.g. the profile or a revoke."""
        prepared = self.session.prepare_request(requests.Request(method, self.api_url + path))
        return self.send(prepared, authenticator)

    def send(
        self,
        request: requests.PreparedRequest,
        authenticator: Authenticator,
        *,
        answers: Collection[int] = (),
        transport: Transport | None = None,
        what: str = "",
    ) -> requests.Response:
        """Send `request` under the policy; the response (2xx or one of `answers`) or `WhoopAPIError`.

        `transport` sends one authenticated attempt (a stream passes the SDK's, which also records its
        metrics); by default this client's session. `what` prefixes messages (e.g. the stream's name).
        """
        send = transport or self._transport(authenticator)
        refreshed = False
        url = urlsplit(request.url or "")
        shown = f"{request.method} {url.path}"

        def attempt() -> requests.Response:
            nonlocal refreshed
            if self.pacer is not None:
                self.pacer.wait_turn()
            response = send(request)
            if self.pacer is not None:
                self.pacer.observe(response.status_code, response.headers)
            status = response.status_code
            if status == HTTPStatus.UNAUTHORIZED:
                if refreshed:
                    msg = (
                        f"{what}{shown} was refused (401 Unauthorized) even with a freshly refreshed access "
                        f"token: {CONSENT_AGAIN}, and check the app's scopes"
                    )
                    raise WhoopAPIError(msg, Failure.NEEDS_REAUTHORIZATION)
                refreshed = True
                rejected = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
                authenticator.handle_unauthorized(rejected)  # the next attempt is authenticated afresh
                raise TryAgain(describe(response), response)
            if status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
                raise TryAgain(describe(response), response)
            if status in answers:
                return response
            if status == HTTPStatus.FORBIDDEN and "deactivated_user" in response.text:
                msg = (
                    f"{what}WHOOP refuses their data (403 deactivated_user: the WHOOP membership is "
                    "inactive); the tap keeps their tokens and tries again next run"
                )
                raise WhoopAPIError(msg, Failure.DEACTIVATED)
            if status == HTTPStatus.NOT_FOUND:
                msg = f"{what}{describe(response)}: check the api_url setting ({self.api_url})"
                raise WhoopAPIError(msg, Failure.APP)
            if status >= HTTPStatus.BAD_REQUEST:
                msg = (
                    f"{what}WHOOP refused the request: {describe(response)}. Check api_url and the app's "
                    f"scopes at developer.whoop.com; if the athlete's access was revoked, {CONSENT_AGAIN}"
                )
                raise WhoopAPIError(msg)
            return response

        gave_up = f"gave up after {self.policy.tries} tries"
        try:
            return self.policy.call(attempt, on_retry=self._log_retry(f"{what}{shown}"))
        except TryAgain as exc:
            raise WhoopAPIError(f"{what}{shown} {gave_up}: {exc}. WHOOP is failing; {RUN_AGAIN}.") from exc
        except DROPPED as exc:
            # The whole URL: when nothing answers, the host is what the user checks.
            where = f"{request.method} {url.scheme}://{url.netloc}{url.path}"
            failure = f"{type(exc).__name__} (unreachable, timeout or dropped connection)"
            msg = f"{what}{where} {gave_up}: {failure}. Check api_url and the network; {RUN_AGAIN}."
            raise WhoopAPIError(msg) from exc

    def _log_retry(self, shown: str) -> t.Callable[[BaseException, int, float], None]:
        def log(exc: BaseException, tries: int, wait: float) -> None:
            # A dropped connection by its kind (its text repeats the URL); a refusal by what WHOOP answered.
            failure = type(exc).__name__ if isinstance(exc, DROPPED) else str(exc) or type(exc).__name__
            self.logger.warning(
                "%s: %s; trying again in %.1f s (try %d of %d)",
                shown,
                failure,
                wait,
                tries + 1,
                self.policy.tries,
            )

        return log

    def _transport(self, authenticator: Authenticator) -> Transport:
        def send(request: requests.PreparedRequest) -> requests.Response:
            return self.session.send(authenticator(request), timeout=self.timeout)

        return send

    # -- the token endpoint
    # ----------------------------------------------------------------------------------------

    def token_request(self, token_url: str, form: Mapping[str, str]) -> dict[str, t.Any]:
        """POST to WHOOP's token endpoint (client_secret_post); the parsed token response.

        Raises `TokenRequestRejected` (an OAuth error: nothing rotated), `TokenRequestUncertain` (WHOOP may
        have rotated the token: never sent again) or, once the policy's tries are spent,
        `TokenRequestNotSent` (it never reached WHOOP).
        """
        return self.policy.call(
            lambda: _post_token_request(token_url, form, self.timeout),
            (TokenRequestNotSent,),
            on_retry=self._log_retry(f"POST {urlsplit(token_url).path}"),
        )


def _nothing_sent(exc: requests.RequestException) -> bool:
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError) and exc.args:
        reason = getattr(exc.args[0], "reason", None)
        # ConnectTimeoutError includes NewConnectionError (refused, DNS failure); a TLS handshake failure
        # also precedes the request. A reset or "connection aborted" is not here: it may follow the send.
        unsent = (urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.SSLError)
        return isinstance(reason, unsent)
    return False


def _post_token_request(
    token_url: str, form: Mapping[str, str], timeout: tuple[float, float]
) -> dict[str, t.Any]:
    # A fresh session per request: a stale keep-alive connection would turn "not sent" into "maybe sent".
    with requests.Session() as session:
        try:
            headers = {"Accept": "application/json"}
            response = session.post(token_url, data=dict(form), timeout=timeout, headers=headers)
        except requests.RequestException as exc:
            if _nothing_sent(exc):
                raise TokenRequestNotSent(type(exc).__name__) from None
            raise TokenRequestUncertain(f"{type(exc).__name__} after the request was sent") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code in {HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.SERVICE_UNAVAILABLE}:
        # Refused before anything was done (rate limited, or the service is unavailable): nothing rotated.
        raise TokenRequestNotSent(f"HTTP {response.status_code} {response.reason}")
    if 400 <= response.status_code < 500 and isinstance(body, dict) and isinstance(body.get("error"), str):
        raise TokenRequestRejected(body["error"], response.status_code)
    if response.status_code != HTTPStatus.OK or not isinstance(body, dict) or not body.get("access_token"):
        kind = "a malformed" if response.ok else "an error"
        raise TokenRequestUncertain(f"HTTP {response.status_code} with {kind} body")
    return body
