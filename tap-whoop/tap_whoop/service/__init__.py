"""`tap-whoop serve`: a small ASGI web service beside the tap (Starlette on uvicorn: `tap-whoop[serve]`)."""

from __future__ import annotations

import typing as t

import click


def run(config: t.Mapping[str, t.Any], *, host: str, port: int) -> None:
    """Serve until interrupted (SIGINT/SIGTERM end it gracefully)."""
    try:
        import uvicorn

        from tap_whoop.service.app import create_app
    except ImportError as exc:
        msg = (
            f"`tap-whoop serve` needs its web server ({exc.name} is missing): pip install 'tap-whoop[serve]'"
        )
        raise click.ClickException(msg) from None
    uvicorn.run(create_app(config), host=host, port=port, log_level="info", access_log=False)
