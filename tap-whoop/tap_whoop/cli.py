"""The `tap-whoop` console script: the Singer tap, and the commands around it.

`tap-whoop [sync] --config ... [--state ...] [--catalog ...]` (and `--about`, `--discover`, `--test`) is the
Singer tap itself, the SDK's command line. `tap-whoop auth|athletes|serve ...` are the commands of the
`commands` group below. Meltano runs a plugin command as `tap-whoop --config FILE <command> ...`, so leading
`--config` options are handed to the command.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import typing as t
from collections.abc import Callable, Mapping
from pathlib import Path

import click

SYNC = "sync"
# What the SDK reads as true in a TAP_WHOOP_* variable (singer_sdk's parse_environment_config); and false.
TRUTHY = ("true", "1", "yes", "on")
FALSY = ("false", "0", "no", "off")
APP_SETTINGS = ("client_id", "client_secret")
F = t.TypeVar("F", bound=Callable[..., t.Any])


def config_option(command: F) -> F:
    """`--config FILE` (repeatable), as the tap takes it."""
    return click.option(
        "--config",
        "config_files",
        multiple=True,
        type=click.Path(dir_okay=False),
        help="Tap config JSON (repeatable; later files win). TAP_WHOOP_* environment variables fill in "
        "missing settings.",
    )(command)


def load_config(config_files: t.Sequence[str], environ: Mapping[str, str] = os.environ) -> dict[str, t.Any]:
    """The tap's settings as given: config files (later ones win), then TAP_WHOOP_<SETTING> for the rest."""
    from tap_whoop.tap import TapWhoop

    config: dict[str, t.Any] = {}
    for name in config_files:
        try:
            loaded = json.loads(Path(name).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise click.UsageError(f"Cannot read config file {name}: {type(exc).__name__}") from None
        if not isinstance(loaded, dict):
            raise click.UsageError(f"Config file {name} must hold a JSON object")
        config.update({k: v for k, v in loaded.items() if v not in (None, "")})
    for setting, schema in TapWhoop.config_jsonschema["properties"].items():
        name = f"TAP_WHOOP_{setting.upper()}"
        value = environ.get(name)
        if value and setting not in config:
            config[setting] = _from_environment(name, value, schema)
    return config


def _from_environment(name: str, value: str, schema: Mapping[str, t.Any]) -> t.Any:
    """An environment variable's text as the setting's JSON type (as the tap itself reads TAP_WHOOP_*)."""
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    if "array" in types:  # `[1, 2]` or `1,2`
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = [item.strip() for item in value.split(",") if item.strip()]
        items = parsed if isinstance(parsed, list) else [parsed]
        return [int(i) if isinstance(i, str) and i.isdigit() else i for i in items]
    if "boolean" in types:
        if value.strip().lower() not in TRUTHY + FALSY:
            raise click.UsageError(f"{name} must be true or false, got {value!r}")
        return value.strip().lower() in TRUTHY
    if "integer" in types:
        try:
            return int(value)
        except ValueError:
            raise click.UsageError(f"{name} must be a whole number, got {value!r}") from None
    return value


def app_config(config_files: t.Sequence[str]) -> dict[str, t.Any]:
    """Complete, validated settings (defaults applied) for a command that acts for the WHOOP app."""
    from singer_sdk.exceptions import ConfigValidationError

    from tap_whoop.tap import TapWhoop

    config = load_config(config_files)
    missing = [name for name in APP_SETTINGS if not config.get(name)]
    if missing:
        raise click.UsageError(
            f"Missing {' and '.join(missing)}: pass --config FILE or set "
            f"{', '.join('TAP_WHOOP_' + m.upper() for m in missing)} (from your app at developer.whoop.com)."
        )
    try:
        return TapWhoop.complete_config(config)
    except ConfigValidationError as exc:
        raise click.UsageError("; ".join(exc.errors) or str(exc)) from None


@click.group(name="tap-whoop")
def commands() -> None:
    """Singer tap for WHOOP; without a command (or with `sync`) it runs the tap itself."""


@commands.command()
@config_option
@click.option("--no-browser", is_flag=True, help="Print the authorization link instead of opening a browser.")
@click.option(
    "--paste",
    is_flag=True,
    help="Headless: open the link on any machine, then paste the URL the browser was redirected to.",
)
@click.option(
    "--timeout", default=300.0, show_default=True, help="Seconds to wait for the redirect to arrive."
)
def auth(config_files: tuple[str, ...], no_browser: bool, paste: bool, timeout: float) -> None:
    """Authorize tap-whoop with your WHOOP account and save the tokens to the token store."""
    from tap_whoop.auth.authorize import authorize

    authorize(app_config(config_files), no_browser=no_browser, paste=paste, timeout=timeout)


@commands.command()
@config_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port.")
def serve(config_files: tuple[str, ...], host: str, port: int) -> None:
    """Run the web service (health check, WHOOP webhooks, athlete enrollment); needs `tap-whoop[serve]`."""
    from tap_whoop.service import run

    run(app_config(config_files), host=host, port=port)


@commands.group()
def athletes() -> None:
    """The app's athletes in the token store: add, list, remove, invite."""


def _registry(config_files: t.Sequence[str]) -> t.Any:
    from tap_whoop.athletes.registry import AthleteRegistry
    from tap_whoop.errors import TokenStoreError

    try:
        return AthleteRegistry(app_config(config_files))
    except TokenStoreError as exc:
        raise click.ClickException(str(exc)) from None


def _failures() -> tuple[type[Exception], ...]:
    from tap_whoop.errors import TokenStoreError, WhoopAPIError

    return (WhoopAPIError, TokenStoreError)


@athletes.command("add")
@config_option
@click.option(
    "--refresh-token",
    "refresh_token",
    required=True,
    help="`-` to read the refresh token from stdin (never put it on the command line).",
)
def athletes_add(config_files: tuple[str, ...], refresh_token: str) -> None:
    """Import an athlete's existing refresh token (refreshed once: it rotates) and enroll them."""
    if refresh_token != "-":  # noqa: S105 - the stdin marker, not a token
        raise click.UsageError(
            "Pass --refresh-token - and the token on stdin (a command line is not secret)."
        )
    token = sys.stdin.read().strip()
    if not token or len(token.split()) != 1:
        raise click.UsageError("Expected one refresh token on stdin.")
    registry = _registry(config_files)
    try:
        user_id, profile = registry.import_refresh_token(token)
    except _failures() as exc:
        raise click.ClickException(str(exc)) from None
    name = " ".join(p for p in (profile.get("first_name"), profile.get("last_name")) if p)
    click.echo(f"Enrolled athlete {user_id} ({name}) in {registry.store.location}; the old token is spent.")


@athletes.command("list")
@config_option
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True)
def athletes_list(config_files: tuple[str, ...], output: str) -> None:
    """Every athlete of the app: user_id, name, enrolled at, last successful sync, last webhook event, status
    (never a token)."""
    from tap_whoop.deletions.feed import EventFeed
    from tap_whoop.stores import open_event_log
    from tap_whoop.timestamps import format_datetime

    config = app_config(config_files)
    registry = _registry(config_files)
    from tap_whoop.stores.events.log import EventLogError

    try:
        log = open_event_log(config.get("token_store"), str(config["client_id"]))
    except EventLogError as exc:
        click.echo(f"Webhook events not shown: {exc}", err=True)
        log = None
    last_events = EventFeed(log, logging.getLogger("tap-whoop")).last_events()
    rows = []
    for athlete in registry.athletes():
        last_event = last_events.get(athlete.user_id)
        rows.append(
            {**athlete.as_json(), "last_event_at": format_datetime(last_event) if last_event else None}
        )
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    header = ("user_id", "name", "enrolled_at", "last_synced_at", "last_event_at", "status")
    table = [header, *[tuple(str(r[c] if r[c] is not None else "-") for c in header) for r in rows]]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    for r in rows:
        if r["status_reason"] and r["status"] != "ok":
            click.echo(f"{r['user_id']}: {r['status_reason']}", err=True)


@athletes.command("remove")
@config_option
@click.argument("user_id", type=int)
@click.option(
    "--revoke", is_flag=True, help="First call WHOOP's DELETE /v2/user/access (no more data, webhooks)."
)
def athletes_remove(config_files: tuple[str, ...], user_id: int, revoke: bool) -> None:
    """Forget an athlete's tokens; their warehouse rows stay (see the README on purging one athlete)."""
    registry = _registry(config_files)
    try:
        athlete = registry.remove(user_id, revoke=revoke)
    except KeyError:
        raise click.ClickException(
            f"No athlete {user_id} in {registry.store.location} (see `tap-whoop athletes list`)."
        ) from None
    except _failures() as exc:
        hint = " Run it without --revoke to forget the tokens anyway." if revoke else ""
        raise click.ClickException(f"{exc}{hint}") from None
    click.echo(f"Athlete {user_id}: {athlete.status_reason}.")


@athletes.command("invite")
@config_option
@click.option(
    "--expires", "expires", default="7d", show_default=True, help="Validity: 30m, 12h, 7d, 2w (<= 90d)."
)
def athletes_invite(config_files: tuple[str, ...], expires: str) -> None:
    """Print an invite link to `tap-whoop serve`'s /connect, signed with service_secret, that expires."""
    from tap_whoop.athletes.invites import InviteError, make_invite, parse_duration

    config = app_config(config_files)
    try:
        url, until = make_invite(config, parse_duration(expires))
    except InviteError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(url)
    click.echo(
        f"Valid until {until:%Y-%m-%d %H:%M} UTC; anyone with it can connect their WHOOP account.", err=True
    )


def _command_args(argv: list[str]) -> list[str] | None:
    """`[command, *args]` for a command invocation (leading `--config` options moved behind the command's
    name), or None when this is a tap invocation."""
    leading: list[str] = []
    while argv[:1] == ["--config"] and len(argv) >= 2:
        leading, argv = [*leading, *argv[:2]], argv[2:]
    if not argv or argv[0] == SYNC or argv[0] not in commands.commands:
        return None
    command = commands.commands[argv[0]]
    if isinstance(command, click.Group) and argv[1:2] and argv[1] in command.commands:
        return [*argv[:2], *leading, *argv[2:]]  # `athletes list`: the options belong to the subcommand
    return [argv[0], *leading, *argv[1:]]


def main() -> None:
    """Dispatch to a command or to the Singer tap; a failure the user can fix ends in one line, exit 1."""
    from tap_whoop.errors import WhoopUserError

    try:
        _dispatch(sys.argv[1:])
    except WhoopUserError as exc:
        # Everything else (a bug) keeps its traceback.
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)


def _dispatch(argv: list[str]) -> None:
    command_args = _command_args(argv)
    if command_args is not None:
        commands.main(args=command_args, prog_name="tap-whoop")  # exits (click's standalone mode)

    from tap_whoop.tap import TapWhoop

    if argv[:1] == [SYNC]:
        sys.argv = [sys.argv[0], *argv[1:]]
    TapWhoop.cli()
