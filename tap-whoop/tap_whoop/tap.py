"""The WHOOP tap: settings, streams, and what a run shares: the athlete registry and the WHOOP client (with
the app's rate-limit pacer)."""

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
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError

from tap_whoop import whoop
from tap_whoop.client.api import WhoopClient
from tap_whoop.client.pacing import RateLimitPacer
from tap_whoop.errors import WhoopSettingsError, WhoopUserError
from tap_whoop.sdk import SdkTapHooks
from tap_whoop.streams.base import WhoopStream
from tap_whoop.streams.endpoints import STREAM_TYPES
from tap_whoop.streams.incremental import DEFAULT_SWEEP_HOURS
from tap_whoop.streams.snapshots import DEFAULT_REFRESH_DAYS
from tap_whoop.sync.budget import LEDGER_KEY
from tap_whoop.timestamps import parse_datetime

if t.TYPE_CHECKING:
    from singer_sdk.streams import Stream

    from tap_whoop.athletes.registry import AthleteRegistry
    from tap_whoop.auth.authenticator import WhoopAuthenticator
    from tap_whoop.deletions.feed import EventFeed

DEFAULT_LOOKBACK_DAYS = 14
URL_SETTINGS = ("api_url", "token_url", "auth_url", "redirect_uri", "public_url")
MIN_SERVICE_SECRET_LENGTH = 32


class TapWhoop(SdkTapHooks):
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
                "Refresh token of one athlete, for single-athlete set-ups (needs the `offline` scope). On "
                "the first run the tap learns whose it is and keeps it, rotating, in `token_store` under "
                "their user_id; this value is read again only when it changes (you re-authorized). "
                "Optional: `tap-whoop auth` and `tap-whoop athletes add` enroll athletes directly."
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
            "webhooks",
            th.BooleanType,
            default=False,
            description=(
                "This app's webhooks reach `tap-whoop serve` (same `token_store`): sleeps, recoveries and "
                "workouts then come from its events (each changed record fetched by id) instead of being "
                "listed every run, and a sweep every `sweep_hours` lists their lookback windows anyway. "
                "Cycles, profile and body are read as without it."
            ),
        ),
        th.Property(
            "sweep_hours",
            th.IntegerType(minimum=1),
            default=DEFAULT_SWEEP_HOURS,
            description=(
                "With `webhooks`: hours between sweeps, which list the lookback windows of sleeps, "
                "recoveries and workouts to catch deliveries WHOOP gave up on and to confirm deletions. "
                "Each sweep costs 3 list calls per athlete."
            ),
        ),
        th.Property(
            "sleep_signals",
            th.BooleanType,
            default=True,
            description=(
                "Fetch each sleep's raw signal stream (heart rate, temperatures, sleep and charging status "
                "per sample) into `sleep_signals`: one call per new or edited sleep, about one per "
                "athlete-day; the history's after everyone's fresh data, within the daily budget. false: no "
                "stream calls."
            ),
        ),
        th.Property(
            "sleep_signal_types",
            th.ArrayType(th.StringType),
            default=list(whoop.SLEEP_SIGNAL_TYPES),
            description=(
                "The signals to fetch (WHOOP's `types`): any of hr, skin_temp, board_temp, battery_temp, "
                "sleep_classification (`is_sleeping`), charging_status (`is_charging`). Default: all six."
            ),
        ),
        th.Property(
            "token_store",
            th.StringType,
            description=(
                "Where the rotating tokens are kept between runs, and beside them the webhook events "
                "`tap-whoop serve` stores: a file path (default: a per-user file, "
                "~/.local/state/tap-whoop/tokens.json, mode 0600) or a SQLAlchemy URL (sqlite:///..., "
                "duckdb:///..., postgresql://..., snowflake://...) for workers whose disks do not survive "
                "between runs. Every athlete of the app lives there, keyed by their WHOOP user_id."
            ),
        ),
        th.Property(
            "athletes",
            th.ArrayType(th.IntegerType),
            description=(
                "WHOOP user_ids to sync (default: every athlete enrolled in `token_store`). For splitting "
                "an app's athletes between tap instances, or syncing one athlete by hand."
            ),
        ),
        th.Property(
            "profile_refresh_days",
            th.IntegerType(minimum=1),
            default=DEFAULT_REFRESH_DAYS,
            description=(
                "Days between re-reads of each athlete's profile and body measurement (never more than "
                "once a day; staggered by user_id). They rarely change, and every call counts against "
                "the app's daily quota: at 7, one app serves 300 athletes every 3 hours."
            ),
        ),
        th.Property(
            "public_url",
            th.URIType,
            description=(
                "External base URL of `tap-whoop serve` (https://...). Its `/callback` must be registered "
                "as a redirect URI of the WHOOP app; invite links point at its `/connect`."
            ),
        ),
        th.Property(
            "service_secret",
            th.StringType,
            secret=True,
            description=(
                "Random secret (at least 32 characters) that signs invite links and the enrollment "
                "service's cookies. Changing it invalidates every open invite."
            ),
        ),
    ).to_dict()

    def discover_streams(self) -> list[Stream]:
        return [stream_type(tap=self) for stream_type in STREAM_TYPES]

    @cached_property
    def registry(self) -> AthleteRegistry:
        """The app's athletes in the token store; one per run, so each athlete has one authenticator."""
        from tap_whoop.athletes.registry import AthleteRegistry
        from tap_whoop.errors import TokenStoreError, WhoopAuthError
        from tap_whoop.sync.scheduler import RunFailed

        try:
            return AthleteRegistry(self.config, self.logger, client=self.client)
        except (TokenStoreError, WhoopAuthError) as exc:
            raise RunFailed(str(exc)) from None

    def athlete_authenticator(self, user_id: int) -> WhoopAuthenticator:
        """Every stream of a run shares (and refreshes) one athlete's tokens through one authenticator."""
        return self.registry.authenticator(user_id)

    @cached_property
    def _athlete_contexts(self) -> list[dict[str, int]]:
        from tap_whoop.athletes.registry import SYNCABLE

        self.registry.adopt_pending()
        return [{"user_id": a.user_id} for a in self.registry.athletes() if a.status in SYNCABLE]

    def athlete_contexts(self) -> list[dict[str, int]]:
        """Every syncable athlete's context: what a sync without a context (a dry run) covers."""
        return self._athlete_contexts

    def fresh_profile(self, user_id: int) -> dict[str, t.Any] | None:
        return self.registry.fresh_profiles.get(user_id)

    @cached_property
    def event_feed(self) -> EventFeed:
        """One snapshot per run of the webhook events `tap-whoop serve` stored where the tokens live."""
        from tap_whoop.deletions.feed import EventFeed
        from tap_whoop.stores import open_event_log
        from tap_whoop.stores.events.log import EventLogError

        try:
            log = open_event_log(self.config.get("token_store"), str(self.config["client_id"]))
        except EventLogError as exc:
            self.logger.warning("Webhook events are not read this run: %s", exc)
            log = None
        return EventFeed(log, self.logger)

    @cached_property
    def pacer(self) -> RateLimitPacer:
        """One pacer per run: WHOOP's rate limit belongs to the app, so all athletes share the quota."""
        return RateLimitPacer(self.logger)

    @cached_property
    def client(self) -> WhoopClient:
        """One client per run for every call to WHOOP: streams, profile adoption, lookups, tokens."""
        return WhoopClient.for_config(self.config, self.pacer, self.logger)

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

    def load_state(self, state: dict[str, t.Any]) -> None:
        super().load_state(state)
        if isinstance(state.get(LEDGER_KEY), dict):
            t.cast("dict[str, t.Any]", self.state)[LEDGER_KEY] = state[LEDGER_KEY]

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

    def extra_config_errors(self) -> list[str]:
        return _semantic_errors(self.config)

    # The SDK marks sync_all final, yet a run over many athletes is not its loop over streams: the scheduler
    # orders the work (fresh data first, history round-robin, within the budget). test_pacing.py checks that
    # the SDK's CLI still reaches it.
    def sync_all(self) -> None:  # type: ignore[misc]
        """Every enrolled athlete, fairly, within the app's budget (see `tap_whoop.sync.scheduler`)."""
        from tap_whoop.sync.scheduler import Scheduler

        self.prepare_run()
        scheduler = Scheduler(self)
        scheduler.run()
        self.event_feed.report_unknown_athletes()
        if self.config.get("webhooks"):
            now = dt.datetime.fromtimestamp(WhoopStream.clock(), dt.UTC)
            enrolled = [(r.user_id, r.athlete.enrolled_at) for r in scheduler.runs if r.synced]
            self.event_feed.report_silent_athletes(enrolled, now)
        for stream in self.streams.values():
            stream.log_sync_costs()

    # Final in the SDK too. Its dry run (the SDK's standard tests) syncs streams by name, which puts
    # sleep_signals before the sleeps that queue its work: in STREAM_TYPES order instead, as a run does.
    def run_sync_dry_run(  # type: ignore[misc]
        self, dry_run_record_limit: int | None = 1, streams: t.Iterable[Stream] | None = None
    ) -> bool:
        if streams is None:
            order = {vars(stream_type)["name"]: i for i, stream_type in enumerate(STREAM_TYPES)}
            streams = sorted(self.streams.values(), key=lambda s: order.get(s.name, len(order)))
        return super().run_sync_dry_run(dry_run_record_limit, streams)

    # Final in the SDK too, where it syncs one record of every stream and reports in tracebacks; one profile
    # call per athlete answers the question in one line. The SDK's --test calls it (test_cli.py runs it).
    def run_connection_test(self) -> bool:  # type: ignore[misc]
        """`tap-whoop --test`: one profile call per enrolled athlete says whether the credentials work."""
        from tap_whoop.athletes.registry import SYNCABLE, fetch_profile

        url = self.config["api_url"]
        try:
            self.registry.adopt_pending()
            users = [a.user_id for a in self.registry.athletes() if a.status in SYNCABLE]
            if not users:
                failures = self.registry.adoption_failures
                detail = " ".join(failures) or "no athlete is enrolled (`tap-whoop auth`)"
                raise WhoopUserError(detail)
            for user_id in users:
                if self.fresh_profile(user_id) is None:
                    fetch_profile(self.client, self.athlete_authenticator(user_id))
        except WhoopUserError as exc:
            raise WhoopUserError(f"WHOOP credentials do not work against {url}: {exc}") from None
        listed = ", ".join(map(str, users))
        who = f"user {users[0]}" if len(users) == 1 else f"{len(users)} athletes: {listed}"
        click.echo(f"OK: WHOOP credentials work ({who}, {url}).")
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
    types = config.get("sleep_signal_types")
    if types is not None and (not types or set(types) - set(whoop.SLEEP_SIGNAL_TYPES)):
        unknown = ", ".join(repr(v) for v in types if v not in whoop.SLEEP_SIGNAL_TYPES) or "an empty list"
        errors.append(
            f"sleep_signal_types must name some of {', '.join(whoop.SLEEP_SIGNAL_TYPES)}; got {unknown}"
        )
    secret = config.get("service_secret")
    if secret and len(str(secret)) < MIN_SERVICE_SECRET_LENGTH:
        errors.append(
            f"service_secret must be at least {MIN_SERVICE_SECRET_LENGTH} characters (for example "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    for key in URL_SETTINGS:
        if value := config.get(key):
            url = urlparse(value)
            if url.scheme not in {"http", "https"} or not url.netloc:
                errors.append(f"{key} must be an absolute http(s) URL, got {value!r}")
    return errors
