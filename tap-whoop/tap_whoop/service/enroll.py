"""Athlete enrollment over the web: an invite link, WHOOP's consent screen, the athlete in the token store.

`GET /connect?invite=...` checks the invite (`tap_whoop.invites`), issues a random single-use OAuth `state`
bound to this browser by a cookie holding a random nonce, and redirects to WHOOP's consent screen with
`redirect_uri = public_url + /callback`. `GET /callback` accepts WHOOP's answer only with a `state` it issued,
once, in the browser it issued it to; then it exchanges the code and enrolls whoever consented (the same path
as `tap-whoop auth`). Every outcome is a plain page; no page, log line or redirect ever shows a token.

Pending states live in the process's memory (ten minutes): run one `tap-whoop serve` process per app; a
restart in the middle of someone's consent only asks them to open their invite link again.
"""

from __future__ import annotations

import hashlib
import html
import logging
import secrets
import threading
import time
import typing as t

from starlette.responses import HTMLResponse, RedirectResponse
from starlette.routing import Route

from tap_whoop.athletes import AthleteRegistry
from tap_whoop.auth.authorize import CodeExchangeFailed, authorize_url, exchange_code
from tap_whoop.errors import TokenStoreError, WhoopAPIError
from tap_whoop.invites import InviteError, InviteExpired, check_invite, connect_url

if t.TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

logger = logging.getLogger("tap-whoop.service")

COOKIE = "tap_whoop_enroll"
STATE_TTL_SECONDS = 600
MAX_PENDING = 10_000
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


class PendingStates:
    """OAuth states issued by /connect: random, single-use, expiring, each bound to one browser's nonce."""

    def __init__(self, clock: t.Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._states: dict[str, tuple[str, float]] = {}

    @staticmethod
    def _digest(nonce: str) -> str:
        return hashlib.sha256(nonce.encode()).hexdigest()

    def issue(self) -> tuple[str, str]:
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            for old in [s for s, (_, expires) in self._states.items() if expires < now]:
                del self._states[old]
            if len(self._states) >= MAX_PENDING:  # a flood of /connect: the oldest give way
                for old in sorted(self._states, key=lambda s: self._states[s][1])[: MAX_PENDING // 10]:
                    del self._states[old]
            self._states[state] = (self._digest(nonce), now + STATE_TTL_SECONDS)
        return state, nonce

    def take(self, state: str | None, nonce: str | None) -> str:
        """`ok`, `unknown` (never issued, used already or expired) or `foreign` (another browser's)."""
        with self._lock:
            entry = self._states.pop(state or "", None)
        if entry is None or entry[1] < self._clock():
            return "unknown"
        if not nonce or not secrets.compare_digest(entry[0], self._digest(nonce)):
            return "foreign"
        return "ok"


def page(title: str, message: str, status: int = 200) -> HTMLResponse:
    body = (
        '<!doctype html><html lang="en"><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        '<body style="font-family: system-ui, sans-serif; max-width: 36rem; margin: 4rem auto">'
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>"
    )
    return HTMLResponse(body, status_code=status, headers=NO_STORE)


def callback_url(config: t.Mapping[str, t.Any]) -> str:
    return connect_url(config).removesuffix("/connect") + "/callback"


def connect(request: Request) -> Response:
    config = request.app.state.config
    token = request.query_params.get("invite")
    if not token:
        return page("Invite needed", "This page opens with the invite link you were sent.", 400)
    try:
        check_invite(config, token)
        redirect_uri = callback_url(config)
    except InviteExpired as exc:
        logger.info("Enrollment: expired invite refused")
        return page("Invite expired", str(exc), 410)
    except InviteError as exc:
        logger.info("Enrollment: invalid invite refused")
        return page("Invite not valid", str(exc), 403)
    state, nonce = request.app.state.enroll_states.issue()
    url = authorize_url(str(config["auth_url"]), str(config["client_id"]), redirect_uri, state)
    response = RedirectResponse(url, status_code=302, headers=NO_STORE)
    response.set_cookie(
        COOKIE,
        nonce,
        max_age=STATE_TTL_SECONDS,
        path="/callback",
        secure=redirect_uri.startswith("https://"),
        httponly=True,
        samesite="lax",  # sent on WHOOP's top-level redirect back, not on cross-site subrequests
    )
    return response


def callback(request: Request) -> Response:
    config = request.app.state.config
    params = request.query_params
    verdict = request.app.state.enroll_states.take(params.get("state"), request.cookies.get(COOKIE))
    if verdict == "unknown":
        logger.info("Enrollment: unknown, used or expired state refused")
        return page(
            "Link already used or expired",
            "This sign-in link was already used or has expired. Open your invite link again.",
            400,
        )
    if verdict == "foreign":
        logger.info("Enrollment: state of another browser refused")
        return page(
            "Sign-in started elsewhere",
            "This sign-in was started in another browser. Open your invite link again in this one.",
            400,
        )
    if error := params.get("error"):
        logger.info("Enrollment: WHOOP answered %s", error[:40])
        if error == "access_denied":
            return page(
                "Not connected", "You declined access, so nothing was connected. You can close this page."
            )
        return page(
            "Not connected", f"WHOOP did not connect your account ({error}). Open your invite link again."
        )
    code = params.get("code")
    if not code:
        return page(
            "Not connected", "WHOOP's answer carried no authorization code. Open your invite link again.", 400
        )
    try:
        body = exchange_code(config, code, callback_url(config))
        registry = AthleteRegistry(config, logger, store=request.app.state.store)
        user_id, profile = registry.enroll(body, source="enroll")
    except CodeExchangeFailed as exc:
        logger.warning("Enrollment failed: %s", exc)
        return page("Not connected", "WHOOP did not accept the sign-in. Open your invite link again.", 502)
    except (WhoopAPIError, TokenStoreError) as exc:
        logger.error("Enrollment failed after WHOOP's consent: %s", exc)
        return page(
            "Connected, with a delay",
            "WHOOP accepted, but the sign-up could not be finished just now; it completes on the next sync.",
            503,
        )
    logger.info("Enrollment: athlete %s enrolled", user_id)
    name = profile.get("first_name") or "there"
    response = page(
        "Connected",
        f"Thanks, {name}: your WHOOP account is connected and your data syncs from now on. "
        "You can close this page.",
    )
    response.delete_cookie(COOKIE, path="/callback")
    return response


routes = [
    Route("/connect", connect, methods=["GET"]),
    Route("/callback", callback, methods=["GET"]),
]
