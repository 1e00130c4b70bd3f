"""`tap-whoop serve`: a small ASGI web service beside the tap (Starlette on uvicorn: `tap-whoop[serve]`)."""

from __future__ import annotations

import copy
import socket
import typing as t

import click


def run(config: t.Mapping[str, t.Any], *, host: str, port: int) -> None:
    """Serve until interrupted (SIGINT/SIGTERM end it gracefully)."""
    try:
        import uvicorn

        from tap_whoop.service.app import create_app
        from tap_whoop.service.server import uvicorn_config
    except ImportError as exc:
        msg = (
            f"`tap-whoop serve` needs its web server ({exc.name} is missing): pip install 'tap-whoop[serve]'"
        )
        raise click.ClickException(msg) from None
    from tap_whoop.stores.events.log import EventLogError

    try:
        app = create_app(config)
    except EventLogError as exc:
        raise click.ClickException(str(exc)) from None
    # uvicorn's own logging, plus the service's lines (one per webhook delivery) through the same handler.
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["loggers"]["tap-whoop"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    server_config = uvicorn_config(app, log_config=log_config)
    # Bound here rather than by uvicorn, which logs a busy port and exits 3 with its shutdown lines last.
    listening = _listen(host, port)
    with listening:
        uvicorn.Server(server_config).run(sockets=[listening])


def _listen(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        msg = f"Cannot listen on {host}:{port}: {exc.strerror or exc}. Pass --host an address of this host."
        raise click.ClickException(msg) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        msg = (
            f"Cannot listen on {host}:{port}: {exc.strerror or exc}. Stop what is using it, or pass another "
            "--port (or --host)."
        )
        raise click.ClickException(msg) from None
    return sock
