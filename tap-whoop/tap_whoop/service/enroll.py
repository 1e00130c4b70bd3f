"""Athlete enrollment over the web: an invite link, WHOOP's consent screen, the athlete in the token store.

`GET /connect?invite=...` checks the invite (`tap_whoop.athletes.invites`), sets a cookie holding a random
nonce and redirects to WHOOP's consent screen with `redirect_uri = public_url + /callback` and an OAuth
`state` that carries the nonce's digest, signed with `service_secret` (itsdangerous) and valid for ten
minutes. `GET /callback` accepts WHOOP's answer only with a genuine, unexpired `state` whose nonce is this
browser's cookie; then it marks the cookie spent (a replay in this browser is refused), exchanges the code and
enrolls whoever consented (the same path as `tap-whoop auth`). Every outcome is a plain page; no page, log
line or redirect ever shows a token.

Nothing about a sign-in in progress lives in the service: no flood of /connect can evict one, a /callback
without the cookie spends nothing, and a restart in the middle of someone's consent loses nothing. The
cookie's path is the path of the callback URL, so a `public_url` with a path (behind a proxy at
https://host/whoop) works.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import logging
import secrets
import typing as t
from urllib.parse import urlsplit

from starlette.responses import HTMLResponse, RedirectResponse
from starlette.routing import Route

from tap_whoop.athletes.invites import InviteError, InviteExpired, check_invite, connect_url
from tap_whoop.athletes.registry import AthleteRegistry
from tap_whoop.auth.authorize import CodeExchangeFailed, authorize_url, exchange_code
from tap_whoop.errors import TokenStoreError, WhoopAPIError
from tap_whoop.service.logs import printable
from tap_whoop.stores.events.log import app_fingerprint

if t.TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

    from starlette.requests import Request
    from starlette.responses import Response

logger = logging.getLogger("tap-whoop.service")

COOKIE = "tap_whoop_enroll"
STATE_SALT = "tap-whoop.enroll-state"
STATE_TTL_SECONDS = 600
# The cookie's value once its sign-in has come back: never a nonce (those are URL-safe base64 of 32 bytes).
SPENT = "spent"
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def setup_problem(config: Mapping[str, t.Any]) -> str | None:
    """What keeps enrollment off (for the operator's log, never an athlete's page), or None."""
    if not config.get("service_secret"):
        return (
            "service_secret is not set, so /connect and /callback turn every athlete away. Set it to a "
            "random string of at least 32 characters (python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))')."
        )
    if not config.get("public_url"):
        return (
            "public_url is not set, so /connect and /callback turn every athlete away. Set it to the "
            "external base URL of `tap-whoop serve` (https://...) and register its /callback with the "
            "WHOOP app."
        )
    return None


def _serializer(config: Mapping[str, t.Any]) -> t.Any:
    from itsdangerous import URLSafeTimedSerializer

    return URLSafeTimedSerializer(str(config["service_secret"]), salt=STATE_SALT)


def _digest(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def issue_state(config: Mapping[str, t.Any]) -> tuple[str, str]:
    """A new sign-in: its OAuth `state` and the nonce for this browser's cookie."""
    nonce = secrets.token_urlsafe(32)
    state = _serializer(config).dumps(
        {"app": app_fingerprint(str(config["client_id"])), "nonce": _digest(nonce)}
    )
    return state, nonce


def check_state(config: Mapping[str, t.Any], state: str | None, cookie: str | None) -> str:
    """`ok`; `unknown` (forged, expired, or already used in this browser) or `foreign` (another browser's).
    Decides from the request alone: nothing is spent by asking."""
    from itsdangerous import BadSignature

    try:
        payload = _serializer(config).loads(state or "", max_age=STATE_TTL_SECONDS)
    except BadSignature:  # SignatureExpired too
        return "unknown"
    if not isinstance(payload, dict) or payload.get("app") != app_fingerprint(str(config["client_id"])):
        return "unknown"
    if cookie == SPENT:
        return "unknown"
    if not cookie or not secrets.compare_digest(str(payload.get("nonce")), _digest(cookie)):
        return "foreign"
    return "ok"


def cookie_path(config: Mapping[str, t.Any]) -> str:
    """Where the browser sends the cookie: the callback's own path, as the browser sees it (behind a proxy
    at https://host/whoop, /whoop/callback)."""
    return urlsplit(callback_url(config)).path


def page(title: str, message: str, status: int = 200) -> HTMLResponse:
    body = (
        '<!doctype html><html lang="en"><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        '<body style="font-family: system-ui, sans-serif; max-width: 36rem; margin: 4rem auto">'
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>"
    )
    return HTMLResponse(body, status_code=status, headers=NO_STORE)


def callback_url(config: Mapping[str, t.Any]) -> str:
    return connect_url(config).removesuffix("/connect") + "/callback"


def unavailable(problem: str) -> HTMLResponse:
    logger.warning("Enrollment refused: %s", problem)
    return page(
        "Sign-up unavailable",
        "Connecting a WHOOP account is not available at the moment. Please let the person who sent you "
        "the link know.",
        503,
    )


def connect(request: Request) -> Response:
    config = request.app.state.config
    if problem := setup_problem(config):
        return unavailable(problem)
    token = request.query_params.get("invite")
    if not token:
        return page("Invite needed", "This page opens with the invite link you were sent.", 400)
    try:
        check_invite(config, token)
    except InviteExpired as exc:
        logger.info("Enrollment: expired invite refused")
        return page("Invite expired", str(exc), 410)
    except InviteError as exc:
        logger.info("Enrollment: invalid invite refused")
        return page("Invite not valid", str(exc), 403)
    redirect_uri = callback_url(config)
    state, nonce = issue_state(config)
    url = authorize_url(str(config["auth_url"]), str(config["client_id"]), redirect_uri, state)
    response = RedirectResponse(url, status_code=302, headers=NO_STORE)
    _set_cookie(response, config, nonce)
    return response


def _set_cookie(response: Response, config: Mapping[str, t.Any], value: str) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=STATE_TTL_SECONDS,
        path=cookie_path(config),
        secure=callback_url(config).startswith("https://"),
        httponly=True,
        samesite="lax",  # sent on WHOOP's top-level redirect back, not on cross-site subrequests
    )


def callback(request: Request) -> Response:
    config = request.app.state.config
    if problem := setup_problem(config):
        return unavailable(problem)
    params = request.query_params
    verdict = check_state(config, params.get("state"), request.cookies.get(COOKIE))
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
    response = _finish(request, config)
    _set_cookie(response, config, SPENT)  # whatever came of it, this sign-in is over
    return response


def _finish(request: Request, config: Mapping[str, t.Any]) -> Response:
    """WHOOP's answer to a sign-in this browser started: the athlete enrolled, or why not."""
    params = request.query_params
    if error := params.get("error"):
        logger.info("Enrollment: WHOOP answered %s", printable(error[:40]))
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
        logger.warning("Enrollment failed: %s", printable(str(exc)))
        return page("Not connected", "WHOOP did not accept the sign-in. Open your invite link again.", 502)
    except (WhoopAPIError, TokenStoreError) as exc:
        logger.error("Enrollment failed after WHOOP's consent: %s", printable(str(exc)))
        return page(
            "Connected, with a delay",
            "WHOOP accepted, but the sign-up could not be finished just now; it completes on the next sync.",
            503,
        )
    logger.info("Enrollment: athlete %s enrolled", user_id)
    name = profile.get("first_name") or "there"
    return page(
        "Connected",
        f"Thanks, {name}: your WHOOP account is connected and your data syncs from now on. "
        "You can close this page.",
    )


@contextlib.asynccontextmanager
async def warn_if_off(app: t.Any) -> AsyncIterator[None]:
    """At start-up, tell the operator (not the athletes) what keeps enrollment off."""
    if problem := setup_problem(app.state.config):
        logger.warning("Enrollment is off: %s", problem)
    yield


routes = [
    Route("/connect", connect, methods=["GET"]),
    Route("/callback", callback, methods=["GET"]),
]
