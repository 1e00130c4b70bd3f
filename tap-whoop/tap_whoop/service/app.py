"""The ASGI application of `tap-whoop serve`: its routes, and what they share (config, token store)."""

from __future__ import annotations

import typing as t

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tap_whoop.service import enroll, webhooks
from tap_whoop.service.server import LIMITS, Limits
from tap_whoop.stores import open_token_store


async def healthz(request: Request) -> JSONResponse:
    """For load balancers: the process is up and answering."""
    return JSONResponse({"status": "ok"})


def create_app(config: t.Mapping[str, t.Any], limits: Limits = LIMITS) -> Starlette:
    """The application for a complete tap config (the tap's settings with their defaults)."""
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        *webhooks.routes(config, body_timeout=limits.body_seconds),
        *enroll.routes,
    ]
    app = Starlette(routes=routes, lifespan=enroll.warn_if_off)
    app.state.config = dict(config)
    app.state.store = open_token_store(config.get("token_store"))
    return app
