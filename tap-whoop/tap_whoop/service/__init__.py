"""`tap-whoop serve`: a small ASGI web service beside the tap (Starlette on uvicorn: `tap-whoop[serve]`)."""

from __future__ import annotations

import copy
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
    from tap_whoop.stores.events import EventLogError

    try:
        app = create_app(config)
    except EventLogError as exc:
        raise click.ClickException(str(exc)) from None
    # uvicorn's own logging, plus the service's lines (one per webhook delivery) through the same handler.
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["loggers"]["tap-whoop"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False, log_config=log_config)
