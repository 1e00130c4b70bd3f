"""The web service's ASGI application: every route of `tap-whoop serve`, in one list."""

from __future__ import annotations

import typing as t

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tap_whoop.service import webhooks


async def healthz(request: Request) -> JSONResponse:
    """For load balancers: the process is up and answering."""
    return JSONResponse({"status": "ok"})


def create_app(config: t.Mapping[str, t.Any]) -> Starlette:
    """The application for a complete tap config (the tap's settings with their defaults)."""
    app = Starlette(routes=[Route("/healthz", healthz, methods=["GET"]), *webhooks.routes(config)])
    app.state.config = dict(config)
    return app
