"""The `tap-whoop` console script: the Singer tap, and the commands around it.

`tap-whoop [sync] --config ... [--state ...] [--catalog ...]` (and `--about`, `--discover`, `--test`) is the
Singer tap itself, the SDK's command line. `tap-whoop auth|serve ...` are the commands of the `commands` group
below. Meltano runs a plugin command as `tap-whoop --config FILE <command> ...`, so leading `--config` options
are handed to the command.
"""

from __future__ import annotations

import json
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


def _command_args(argv: list[str]) -> list[str] | None:
    """`[command, *args]` for a command invocation (leading `--config` options moved behind the command's
    name), or None when this is a tap invocation."""
    leading: list[str] = []
    while argv[:1] == ["--config"] and len(argv) >= 2:
        leading, argv = [*leading, *argv[:2]], argv[2:]
    if not argv or argv[0] == SYNC or argv[0] not in commands.commands:
        return None
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
