"""The WHOOP tap: settings, streams and the shared authenticator and rate-limit pacer."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import typing as t
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from urllib.parse import urlparse

import click
from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError

from tap_whoop import whoop
from tap_whoop.errors import WhoopSettingsError, WhoopUserError
from tap_whoop.pacing import RateLimitBudgetExhausted, RateLimitPacer
from tap_whoop.streams import STREAM_TYPES
from tap_whoop.timestamps import format_datetime, parse_datetime

if t.TYPE_CHECKING:
    from singer_sdk.streams import Stream

    from tap_whoop.auth.authenticator import WhoopAuthenticator
    from tap_whoop.feed import EventFeed

DEFAULT_LOOKBACK_DAYS = 14
URL_SETTINGS = ("api_url", "token_url", "auth_url", "redirect_uri")


class TapWhoop(Tap):
    """Singer tap for the WHOOP API v2 (cycles, sleeps, recoveries, workouts, profile, body measurements)."""

    name = "tap-whoop"

    config_jsonschema = th.PropertiesList(
        th.Property(
            "client_id",
            th.StringType,
            required=True,
            secret=True,
            description="Client ID of your WHOOP developer app (developer-dashboard.whoop.com).",
        ),
        th.Property(
            "client_secret",
            th.StringType,
            required=True,
            secret=True,
            description="Client secret of your WHOOP developer app.",
        ),
        th.Property(
            "refresh_token",
            th.StringType,
            secret=True,
            description=(
                "Refresh token from `tap-whoop auth` (needs the `offline` scope). WHOOP rotates it on "
                "every refresh: the tap keeps the current one in `token_store`, so this value is only read "
                "when it is new (you re-authorized) or the store is empty. Optional once the store has one."
            ),
        ),
        th.Property(
            "start_date",
            th.DateTimeType,
            description=(
                "Earliest record start to sync on the first run (ISO 8601, e.g. 2021-01-01T00:00:00Z). "
                "Omit to read the athlete's whole history."
            ),
        ),
        th.Property(
            "end_date",
            th.DateTimeType,
            description=(
                "Only sync records that start before this time (ISO 8601). For bounded backfills; omit to "
                "sync up to now. Bookmarks never move past it."
            ),
        ),
        th.Property(
            "lookback_days",
            th.IntegerType(minimum=0),
            default=DEFAULT_LOOKBACK_DAYS,
            description=(
                "Days before the bookmark to re-read on every incremental run, to pick up records WHOOP "
                "changes after the fact (late scores, back-dated workouts, edited sleeps). Costs about one "
                "extra page per stream per run."
            ),
        ),
        th.Property(
            "api_url",
            th.URIType,
            default=whoop.API_URL,
            description="Base URL of the WHOOP API (the `/v2/...` paths are appended).",
        ),
        th.Property(
            "token_url",
            th.URIType,
            default=whoop.TOKEN_URL,
            description="WHOOP's OAuth 2.0 token endpoint.",
        ),
        th.Property(
            "auth_url",
            th.URIType,
            default=whoop.AUTH_URL,
            description="WHOOP's OAuth 2.0 authorization endpoint (used by `tap-whoop auth`).",
        ),
        th.Property(
            "redirect_uri",
            th.URIType,
            default=whoop.REDIRECT_URI,
            description=(
                "Redirect URI registered for your WHOOP app; `tap-whoop auth` listens on it to catch the "
                "authorization code."
            ),
        ),
        th.Property(
            "reconcile_deletions",
            th.BooleanType,
            default=True,
            description=(
                "Detect deletions without webhooks: a record the lookback window no longer returns is "
                "looked up by id, and a 404 goes to `deleted_records`. One call per missing record, none "
                "in steady state."
            ),
        ),
        th.Property(
            "token_store",
            th.StringType,
            description=(
                "Where the rotating tokens are kept between runs, and beside them the webhook events "
                "`tap-whoop serve` stores: a file path (default: a per-user file, "
                "~/.local/state/tap-whoop/tokens.json, mode 0600) or a SQLAlchemy URL (sqlite:///..., "
                "duckdb:///..., snowflake://...) for workers whose disks do not survive between runs."
            ),
        ),
    ).to_dict()

    def discover_streams(self) -> list[Stream]:
        return [stream_type(tap=self) for stream_type in STREAM_TYPES]

    @cached_property
    def authenticator(self) -> WhoopAuthenticator:
        """One authenticator per run, so every stream shares (and refreshes) the same tokens."""
        from tap_whoop.auth.authenticator import WhoopAuthenticator

        return WhoopAuthenticator(self.config, self.logger)

    @cached_property
    def event_feed(self) -> EventFeed:
        """One snapshot per run of the webhook events `tap-whoop serve` stored where the tokens live."""
        from tap_whoop.feed import EventFeed
        from tap_whoop.stores import open_event_log
        from tap_whoop.stores.events import EventLogError

        try:
            log = open_event_log(self.config.get("token_store"), str(self.config["client_id"]))
        except EventLogError as exc:
            self.logger.warning("Webhook events are not read this run: %s", exc)
            log = None
        return EventFeed(log, self.logger)

    @cached_property
    def pacer(self) -> RateLimitPacer:
        """One pacer per run: WHOOP's rate limit belongs to the app, so all streams share the quota."""
        return RateLimitPacer(self.logger)

    # The SDK's command-line callbacks, wrapped: what a user can fix there (a missing or broken --config,
    # --state or --catalog file, invalid settings) ends in one line (tap_whoop.cli.main prints it) instead of
    # a traceback or a last line that only says "Config validation failed". In-process, TapWhoop(config=...)
    # still raises the SDK's ConfigValidationError.
    @classmethod
    def cb_config(cls, ctx: click.Context, param: click.Option, value: tuple[str, ...]) -> t.Any:
        for name in value:
            if name != "ENV":
                _read_json_file("--config", Path(name))
        return super().cb_config(ctx, param, value)

    @classmethod
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: t.Any = None,
        state: t.IO[str] | None = None,
        catalog: t.IO[str] | None = None,
    ) -> None:
        state, catalog = _checked_json("--state", state), _checked_json("--catalog", catalog)
        with _settings_errors():
            super().invoke(
                about=about, about_format=about_format, config=config, state=state, catalog=catalog
            )

    @classmethod
    def cb_test(cls, ctx: click.Context, param: click.Option, value: str) -> None:
        with _settings_errors():
            super().cb_test(ctx, param, value)

    @classmethod
    def complete_config(cls, config: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
        """`config` validated as a run validates it, defaults filled in: for the commands beside the tap.

        (Instantiating the tap would too, but would also take over SIGINT/SIGTERM to write Singer state.)
        """
        from singer_sdk.plugin_base import JSONSchemaValidator

        complete = dict(config)
        errors = [
            f"{'.'.join(map(str, error.path)) or 'config'}: {error.message}"
            for error in JSONSchemaValidator(cls.config_jsonschema).iter_errors(complete)
        ] or _semantic_errors(complete)
        if errors:
            raise ConfigValidationError("Config validation failed", errors=errors)
        return complete

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        errors = super()._validate_config(raise_errors=raise_errors)
        if errors:
            return errors
        errors = _semantic_errors(self.config)
        if errors and raise_errors:
            raise ConfigValidationError("Config validation failed", errors=errors)
        for error in errors:
            self.logger.warning("Config: %s", error)
        return errors

    # The SDK marks sync_all final, yet offers no hook around its stream loop, and a spent daily budget must
    # end the loop with the state saved and exit 0. The override only wraps super(); test_pacing.py checks
    # that the SDK's CLI still reaches it.
    def sync_all(self) -> None:  # type: ignore[misc]
        try:
            super().sync_all()
            self.event_feed.report_unknown_athletes()
        except RateLimitBudgetExhausted as exc:
            # The interrupted stream's new bookmark is still an unpromoted progress marker, so the saved state
            # resumes it from its previous bookmark; completed streams keep theirs.
            self.state_writer.write_state(self.state)
            wait = exc.resume_at - dt.datetime.now(dt.UTC)
            self.logger.warning(
                "Stopped cleanly: the WHOOP app's daily request budget is spent. State is saved; "
                "run again after %s (in %s).",
                format_datetime(exc.resume_at),
                dt.timedelta(seconds=max(0, round(wait.total_seconds()))),
            )

    # Final in the SDK too, where it syncs one record of every stream and reports in tracebacks; one profile
    # call answers the question in one line. The SDK's --test calls it (test_cli.py runs `tap-whoop --test`).
    def run_connection_test(self) -> bool:  # type: ignore[misc]
        """`tap-whoop --test`: one profile call says whether the credentials work."""
        profile = self.streams["profile"]
        try:
            row = next(iter(profile.get_records(None)))
        except WhoopUserError as exc:
            msg = f"WHOOP credentials do not work against {self.config['api_url']}: {exc}"
            raise WhoopUserError(msg) from None
        record = row[0] if isinstance(row, tuple) else row  # the SDK's (record, child context) form
        click.echo(f"OK: WHOOP credentials work (user {record['user_id']}, {self.config['api_url']}).")
        return True


@contextlib.contextmanager
def _settings_errors() -> Iterator[None]:
    try:
        yield
    except ConfigValidationError as exc:
        errors = "; ".join(exc.errors) or str(exc)
        msg = (
            f"Invalid settings: {errors}. Fix them in the --config file or the TAP_WHOOP_* environment "
            "variables (`tap-whoop --about` lists every setting)."
        )
        raise WhoopSettingsError(msg) from None


def _read_json_file(option: str, path: Path) -> t.Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise WhoopSettingsError(
            f"Cannot read {option} {path}: {reason}. Pass the path of a JSON file."
        ) from None
    except ValueError as exc:
        raise WhoopSettingsError(
            f"{option} {path} is not valid JSON ({exc}). Fix or replace the file."
        ) from None


def _checked_json(option: str, handle: t.IO[str] | None) -> t.IO[str] | None:
    """The file click opened, its JSON checked; handed on as text for the SDK to parse again."""
    if handle is None:
        return None
    text = handle.read()
    try:
        json.loads(text)
    except ValueError as exc:
        raise WhoopSettingsError(
            f"{option} {handle.name} is not valid JSON ({exc}). Fix or replace the file."
        ) from None
    return io.StringIO(text)


def _semantic_errors(config: t.Mapping[str, t.Any]) -> list[str]:
    """Checks JSON Schema cannot express: parseable dates in order, and absolute http(s) URLs."""
    errors = []
    dates: dict[str, dt.datetime] = {}
    for key in ("start_date", "end_date"):
        if value := config.get(key):
            try:
                dates[key] = parse_datetime(value)
            except ValueError:
                errors.append(f"{key} must be an ISO 8601 date-time like 2024-01-31T00:00:00Z, got {value!r}")
    if len(dates) == 2 and dates["end_date"] <= dates["start_date"]:
        errors.append("end_date must be later than start_date")
    for key in URL_SETTINGS:
        if value := config.get(key):
            url = urlparse(value)
            if url.scheme not in {"http", "https"} or not url.netloc:
                errors.append(f"{key} must be an absolute http(s) URL, got {value!r}")
    return errors
