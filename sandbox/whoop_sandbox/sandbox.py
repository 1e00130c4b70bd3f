"""The Sandbox: synthetic athletes, their OAuth app, rate limits, faults and changes over time."""

from __future__ import annotations

import ipaddress
import re
import threading
from collections.abc import Sequence
from datetime import datetime
from random import Random
from typing import TYPE_CHECKING

from .clock import Clock, RealClock, as_datetime
from .data import (
    DAY,
    HOUR,
    KINDS,
    MINUTE,
    SCORE_STATES,
    SPORTS,
    Athlete,
    Record,
    cycle_score,
    fmt,
    generate_history,
    make_athlete,
    make_workout,
    score_view,
    to_ms,
)
from .faults import FaultPlan
from .fields import FieldChanges
from .oauth import OAuthServer
from .paging import TokenCodec
from .ratelimit import RateLimiter
from .signals import DEFAULT_INTERVAL
from .webhooks import WebhookSender

if TYPE_CHECKING:
    from .server import SandboxHTTPServer

TIMEZONE_OFFSET = re.compile(r"Z|[+-](0\d|1[0-4]):[0-5]\d")
WHOOP_RATE_LIMITS = ((100, 60), (10000, 86400))
KIND_ALIASES = {
    "cycle": "cycle",
    "cycles": "cycle",
    "sleep": "sleep",
    "sleeps": "sleep",
    "recovery": "recovery",
    "recoveries": "recovery",
    "workout": "workout",
    "workouts": "workout",
}
# What add_fields and stop_field change: the record kinds, and the two single-record endpoints.
# What add_fields and stop_field change: the record kinds, the snapshots, and a sleep's signal stream (its
# top-level body; `stream.` paths would address the samples array, not each sample).
RESOURCES = {
    **KIND_ALIASES,
    "profile": "profile",
    "body_measurement": "body_measurement",
    "sleep_signals": "sleep_signals",
}


# The length of a workout a test adds (add_past_workout, workouts_at).
PLANTED_MINUTES = 40.0


def _free_start(athlete: Athlete, now_ms: int, days_ago: float) -> int:
    """Where a workout a test adds `days_ago` days before `now_ms` starts: the first half hour from then on at
    which it overlaps none of the athlete's sleeps and workouts (a minute apart) and ends by `now_ms`."""
    start, minutes = now_ms - int(days_ago * DAY), PLANTED_MINUTES
    busy = [
        (r.start_ms, r.end_ms)
        for kind in ("sleep", "workout")
        for r in athlete.records[kind].items
        if r.end_ms is not None and r.end_ms > start - DAY and r.start_ms < start + 2 * DAY
    ]
    while any(s < start + minutes * MINUTE + MINUTE and start - MINUTE < e for s, e in busy):
        start += 30 * MINUTE
    if start + minutes * MINUTE > now_ms:
        raise ValueError(f"no free time for a workout {days_ago} days ago: it would end after now")
    return start


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Sandbox:
    """An in-process stand-in for the WHOOP v2 API. See README.md for the full interface."""

    def __init__(
        self,
        seed: int = 7,
        days: int = 90,
        athletes: int = 2,
        access_token_ttl: float = 3600,
        rate_limits=WHOOP_RATE_LIMITS,
        now: datetime | None = None,
        fault_rate: float = 0.0,
        clock: Clock | None = None,
        athlete_days: dict[int, int] | None = None,
        signal_interval: float = DEFAULT_INTERVAL,
        workouts_at: Sequence[float] = (),
    ):
        """`athlete_days` gives some athletes (by index) a history of their own length instead of `days`.

        `workouts_at`: ages in days (at least 2) at which every athlete also has a scored workout, logged like
        the generated ones. A third of generated days have no workout, so the workout nearest an age can lie
        days away, or be the one nearest another age; a test that picks workouts by age plants them here.
        """
        if now is not None and now.tzinfo is None:
            raise ValueError("now must be an aware datetime")
        if athletes < 1 or days < 1:
            raise ValueError("athletes and days must be at least 1")
        if any(not days_ago >= 2 for days_ago in workouts_at):
            raise ValueError(
                "workouts_at takes ages of at least 2 days (younger ones can be in the open cycle)"
            )
        if not signal_interval >= 0.001:  # a millisecond: the timestamps' resolution
            raise ValueError("signal_interval must be at least 0.001 seconds")
        # Seconds between the samples of a sleep's signal stream (coarse by default: tests stay fast).
        self.signal_interval = float(signal_interval)
        self.seed, self.days = seed, days
        # Everything that asks "what time is it" asks this clock; the history ends at `now`, or at the clock's
        # time when only a clock is given.
        self.clock: Clock = clock if clock is not None else RealClock(now)
        history_end_ms = to_ms(now) if now is not None else self.clock_ms()
        self._lock = threading.RLock()
        self.athletes: list[Athlete] = []
        for index in range(athletes):
            athlete = make_athlete(seed, index, {a.user_id for a in self.athletes})
            generate_history(athlete, seed, (athlete_days or {}).get(index, days), history_end_ms)
            for days_ago in workouts_at:
                start = _free_start(athlete, history_end_ms, days_ago)
                rng = Random(f"whoop-sandbox:{seed}:planted:{index}:{start}")
                sport = SPORTS[rng.randrange(len(SPORTS))]
                athlete.records["workout"].add(make_workout(rng, athlete, start, PLANTED_MINUTES, sport))
            self.athletes.append(athlete)
        self.oauth = OAuthServer(access_token_ttl, clock=self.clock)
        app = self.oauth.add_app()
        self.client_id, self.client_secret = app.client_id, app.client_secret
        self.rate_limiter = RateLimiter(list(rate_limits), clock=self.clock)
        self.faults = FaultPlan(seed, fault_rate)
        self.tokens = TokenCodec(seed)
        self.consent_athlete = 0  # who "logs in" on the automatic consent screen
        # "allow" (consent at once), "deny" (redirect with error=access_denied) or "page" (an HTML page
        # with Allow and Deny buttons, for browser tests)
        self.consent = "allow"
        self.deactivated: set[int] = set()  # athlete indexes whose WHOOP membership is inactive (403)
        self.loop_tokens: set[str] = set()
        self._changes = 0
        self._log: list[dict] = []
        self._log_lock = threading.Lock()
        self._server: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.stopping = threading.Event()
        self.webhooks = WebhookSender()
        self._deleted: dict[tuple[str, int | str], list[Record]] = {}  # what restore_record can bring back
        self.fields = FieldChanges()  # the shape of what is served: fields WHOOP adds or stops sending

    # ----------------------------------------------------------------- lifecycle
    def start(self, host: str = "127.0.0.1", port: int = 0) -> Sandbox:
        from .server import SandboxHTTPServer

        if not _is_loopback(host):
            raise ValueError(f"the sandbox listens on loopback only, not {host!r}")
        if self._server is not None:
            raise RuntimeError("sandbox already started")
        self.stopping.clear()
        self._server = SandboxHTTPServer((host, port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="whoop-sandbox",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.webhooks.stop()
        if self._server is None:
            return
        self.stopping.set()  # wakes handlers sleeping in slow/timeout faults
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> Sandbox:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("sandbox not started")
        # The bound address (what server_address holds too, but typed for every socket family).
        host, port = self._server.socket.getsockname()[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return self.base_url + "/developer"

    @property
    def token_url(self) -> str:
        return self.base_url + "/oauth/oauth2/token"

    @property
    def auth_url(self) -> str:
        return self.base_url + "/oauth/oauth2/auth"

    def clock_ms(self) -> int:
        """The sandbox's now in epoch milliseconds (see `clock`)."""
        return int(self.clock() * 1000)

    def now(self) -> datetime:
        """The sandbox's now as an aware UTC datetime."""
        return as_datetime(self.clock())

    # ----------------------------------------------------------------- credentials
    def add_client(self) -> tuple[str, str]:
        """Register another application (its own rate limits); returns (client_id, client_secret)."""
        app = self.oauth.add_app()
        return app.client_id, app.client_secret

    def grant_refresh_token(self, athlete: int = 0, client_id: str | None = None) -> str:
        """A fresh refresh token, as if the athlete had just authorized the app with every scope."""
        self._athlete(athlete)
        grant = self.oauth.grant(client_id or self.client_id, athlete)
        if grant.refresh_token is None:
            raise RuntimeError("the grant has no refresh token (it lacks the offline scope)")
        return grant.refresh_token

    def credentials(self, athlete: int = 0) -> dict:
        """Everything a tap needs for one athlete (what the CLI writes to --credentials-out)."""
        return {
            "api_url": self.api_url,
            "token_url": self.token_url,
            "auth_url": self.auth_url,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": self.grant_refresh_token(athlete),
        }

    def expire_access_tokens(self) -> None:
        """Make every access token issued so far expire now (refresh tokens stay valid)."""
        self.oauth.expire_access_tokens()

    def reset_rate_limits(self) -> None:
        """Every app starts fresh windows (as if their quotas had just reset)."""
        self.rate_limiter.reset()

    def revoke_consent(self, athlete: int = 0, client_id: str | None = None) -> int:
        """The athlete disconnects the app in WHOOP: all their tokens for it die; returns how many grants."""
        self._athlete(athlete)
        return self.oauth.revoke_athlete(client_id or self.client_id, athlete)

    def deactivate(self, athlete: int = 0, active: bool = False) -> None:
        """The athlete's membership lapses (API calls answer 403 deactivated_user), or resumes."""
        self._athlete(athlete)
        if active:
            self.deactivated.discard(athlete)
        else:
            self.deactivated.add(athlete)

    def set_consent(self, mode: str, athlete: int | None = None) -> None:
        """How the consent screen answers (`allow`, `deny`, `page`) and who signs in on it."""
        if mode not in ("allow", "deny", "page"):
            raise ValueError("consent mode must be allow, deny or page")
        self.consent = mode
        if athlete is not None:
            self._athlete(athlete)
            self.consent_athlete = athlete

    # ----------------------------------------------------------------- observability
    def record_request(self, entry: dict) -> None:
        with self._log_lock:
            self._log.append(entry)

    @property
    def request_log(self) -> list[dict]:
        with self._log_lock:
            return [dict(e) for e in self._log]

    def clear_log(self) -> None:
        with self._log_lock:
            self._log.clear()

    # ----------------------------------------------------------------- faults
    def inject_fault(
        self, kind: str, path_prefix: str = "/developer/v2/", count: int = 1, delay=None
    ) -> dict:
        """Make the next `count` requests under `path_prefix` fail with `kind` (see README for the kinds)."""
        return vars(self.faults.inject(kind, path_prefix, count, delay)).copy()

    def set_fault_rate(
        self, rate: float, kinds=("500", "502", "503"), path_prefix: str = "/developer/"
    ) -> None:
        """Fail this share of requests with a kind drawn from `kinds`, reproducibly from the seed."""
        self.faults.set_rate(rate, kinds, path_prefix)

    def clear_faults(self) -> None:
        self.faults.clear()
        self.webhooks.clear_faults()
        with self._lock:
            self.loop_tokens.clear()

    # ----------------------------------------------------------------- data access
    def _athlete(self, index: int) -> Athlete:
        if not 0 <= index < len(self.athletes):
            raise ValueError(f"no athlete {index}; the sandbox has {len(self.athletes)}")
        return self.athletes[index]

    def find(self, kind: str, key) -> Record | None:
        canonical = KIND_ALIASES.get(kind)
        if canonical is None:
            raise ValueError(f"unknown record kind; expected one of {KINDS}")
        if canonical in ("cycle", "recovery"):
            try:
                key = int(key)
            except (TypeError, ValueError):
                return None
        for athlete in self.athletes:
            record = athlete.records[canonical].by_key.get(key)
            if record is not None:
                return record
        return None

    def _stamp(self) -> str:
        return fmt(self.clock_ms())

    # ----------------------------------------------------------------- changes over time
    def rescore_pending(self) -> list[dict]:
        """WHOOP finishes scoring: every PENDING_SCORE record becomes SCORED (updated_at bumped)."""
        changed = []
        with self._lock:
            stamp = self._stamp()
            for athlete in self.athletes:
                for collection in athlete.records.values():
                    for record in collection.items:
                        if record.body["score_state"] == "PENDING_SCORE":
                            record.body["score_state"] = "SCORED"
                            record.body["updated_at"] = stamp
                            changed.append(score_view(record))
                            self._notify(record, "updated")
        return changed

    def add_past_workout(self, athlete: int = 0, days_ago: float = 10, pending: bool = False) -> dict:
        """A workout logged today for a day in the past (created/updated now, started `days_ago` days ago).

        `pending=True`: WHOOP is still scoring it (PENDING_SCORE, no score until `rescore_pending`).
        """
        with self._lock:
            person = self._athlete(athlete)
            now = self.clock_ms()
            self._changes += 1
            rng = Random(f"whoop-sandbox:{self.seed}:change:{self._changes}")
            start = _free_start(person, now, days_ago)
            workout = make_workout(rng, person, start, PLANTED_MINUTES, SPORTS[0])
            workout.body["created_at"] = workout.body["updated_at"] = self._stamp()
            if pending:
                workout.body["score_state"] = "PENDING_SCORE"
            person.records["workout"].add(workout)
            self._notify(workout, "updated")  # WHOOP sends a create as an `updated` event
            return score_view(workout)

    def edit_workout(self, athlete: int = 0, days_ago: float = 30, workout_id: str | None = None) -> dict:
        """The athlete relabels a workout (another sport): `workout_id`, or the scored one that started
        nearest `days_ago` days ago; its updated_at is bumped and a `workout.updated` webhook goes out."""
        with self._lock:
            if workout_id is None:
                workout = self._nearest(athlete, "workout", days_ago)
            else:
                found = self.find("workout", workout_id)
                if found is None:
                    raise KeyError(f"no workout {workout_id!r}")
                workout = found
            names = [sport[1] for sport in SPORTS if sport[1] != workout.body["sport_name"]]
            workout.body["sport_name"] = names[self._changes % len(names)]
            self._changes += 1
            if "sport_id" in workout.body:
                workout.body["sport_id"] = next(s[0] for s in SPORTS if s[1] == workout.body["sport_name"])
            workout.body["updated_at"] = self._stamp()
            self._notify(workout, "updated")
            return score_view(workout)

    def move_record(self, kind: str, record_id, days_ago: float) -> dict:
        """The athlete moves a sleep or workout to another date (start `days_ago` days ago, same length); its
        updated_at is bumped and an `updated` webhook goes out. A moved sleep keeps its cycle and recovery."""
        with self._lock:
            record = self.find(kind, record_id)
            if record is None:
                raise KeyError(f"no {kind} {record_id!r}")
            if record.kind not in ("sleep", "workout") or record.end_ms is None:
                raise ValueError("only completed sleeps and workouts can be moved")
            collection = self.athletes[record.athlete].records[record.kind]
            collection.remove(record.key)
            record.edits += 1
            length = record.end_ms - record.start_ms
            record.start_ms = self.clock_ms() - int(days_ago * DAY)
            record.end_ms = record.start_ms + length
            record.body.update(start=fmt(record.start_ms), end=fmt(record.end_ms), updated_at=self._stamp())
            collection.add(record)
            self._notify(record, "updated")
            return score_view(record)

    def record_near(
        self, kind: str, athlete: int = 0, days_ago: float = 5, state: str | None = "SCORED"
    ) -> dict:
        """The record of `kind` in `state` (None: any) whose start lies nearest `days_ago` days ago (sleeps:
        main sleeps only; never the athlete's current, still open, cycle or its activities), as served.

        The state is asked for, not assumed: which record lies nearest a given age changes with the calendar
        day (each day's records are drawn from that date's seed), and about 1-3 % of them are UNSCORABLE.
        """
        with self._lock:
            return score_view(self._nearest(athlete, kind, days_ago, state))

    def _nearest(self, athlete: int, kind: str, days_ago: float, state: str | None = "SCORED") -> Record:
        person = self._athlete(athlete)
        name = KIND_ALIASES.get(kind)
        if name is None:
            raise ValueError(f"unknown record kind; expected one of {KINDS}")
        if state is not None and state not in SCORE_STATES:
            raise ValueError(f"unknown score state {state!r}; expected one of {SCORE_STATES} or None")
        current = person.current_cycle()
        candidates = [
            r
            for r in person.records[name].items
            if r.end_ms is not None
            and (current is None or r.start_ms < current.start_ms)
            and not (name == "sleep" and r.body["nap"])
            and (state is None or r.body["score_state"] == state)
        ]
        if not candidates:
            wanted = "" if state is None else f"{state} "
            raise ValueError(f"athlete {athlete} has no completed {wanted}{name} to choose")
        target = self.clock_ms() - int(days_ago * DAY)
        return min(candidates, key=lambda r: abs(r.start_ms - target))

    def edit_sleep(self, athlete: int = 0, days_ago: float = 5) -> dict:
        """The athlete corrects an old sleep's wake time (12 minutes later); updated_at is bumped."""
        with self._lock:
            person = self._athlete(athlete)
            sleep = self._nearest(athlete, "sleep", days_ago)
            sleep.edits += 1
            extra = 12 * MINUTE
            sleep.end_ms = sleep.finished_ms + extra
            sleep.body["end"] = fmt(sleep.end_ms)
            score = sleep.hidden_score
            if score is None:  # every generated sleep carries one (an unscorable sleep only hides it)
                raise ValueError(f"sleep {sleep.key} has no score to edit")
            stage = score["stage_summary"]
            stage["total_in_bed_time_milli"] += extra
            stage["total_light_sleep_time_milli"] += extra
            asleep = (
                stage["total_light_sleep_time_milli"]
                + stage["total_slow_wave_sleep_time_milli"]
                + stage["total_rem_sleep_time_milli"]
            )
            score["sleep_efficiency_percentage"] = round(
                100 * asleep / (stage["total_in_bed_time_milli"] - stage["total_no_data_time_milli"]), 8
            )
            need = sum(score["sleep_needed"].values())
            if "sleep_performance_percentage" in score and need > 0:
                score["sleep_performance_percentage"] = float(min(100, round(100 * asleep / need)))
            sleep.body["updated_at"] = self._stamp()
            recovery = person.records["recovery"].by_key.get(sleep.body["cycle_id"])
            if recovery is not None and recovery.body["sleep_id"] == sleep.key:
                recovery.end_ms = sleep.end_ms
            self._notify(sleep, "updated")
            return score_view(sleep)

    def delete_record(self, kind: str, record_id) -> dict:
        """Remove a record (as when an athlete deletes an activity); returns what was deleted.

        As at WHOOP, deleting a sleep also deletes the recovery based on it, and the webhooks say so
        (`sleep.deleted`, then `recovery.deleted` naming the same sleep); cycles have no webhooks.
        """
        with self._lock:
            record = self.find(kind, record_id)
            if record is None:
                raise KeyError(f"no {kind} {record_id!r}")
            collections = self.athletes[record.athlete].records
            collections[record.kind].remove(record.key)
            self._notify(record, "deleted")
            gone = [record]
            if record.kind == "sleep":
                recovery = collections["recovery"].by_key.get(record.body["cycle_id"])
                if recovery is not None and recovery.body["sleep_id"] == record.key:
                    collections["recovery"].remove(recovery.key)
                    self._notify(recovery, "deleted")
                    gone.append(recovery)
            self._deleted[(record.kind, record.key)] = gone
            return score_view(record)

    def restore_record(self, kind: str, record_id) -> dict:
        """WHOOP serves a deleted record again (with the recovery its deletion took), updated_at bumped to
        now, with `updated` webhooks; returns it as the API serves it."""
        with self._lock:
            name = KIND_ALIASES.get(kind)
            if name is None:
                raise ValueError(f"unknown record kind; expected one of {KINDS}")
            key = int(record_id) if name in ("cycle", "recovery") else str(record_id)
            gone = self._deleted.pop((name, key), None)
            if gone is None:
                raise KeyError(f"no deleted {kind} {record_id!r}")
            stamp = self._stamp()
            for record in gone:
                record.body["updated_at"] = stamp
                self.athletes[record.athlete].records[record.kind].add(record)
                self._notify(record, "updated")
            return score_view(gone[0])

    # ----------------------------------------------------------------- the shape of what is served
    def add_fields(self, kind: str, fields: dict, since_days_ago: float | None = None) -> dict:
        """WHOOP starts sending fields this API version does not document on every record of `kind` (a record
        kind, `profile`, `body_measurement` or `sleep_signals`, a signal stream's body) it serves from now on:
        `fields` maps dotted paths to values (`{"daily_step_total": 1234, "score.breathing_variability":
        25.9}`; a nested one only where the record has the object). `since_days_ago`: only on records created
        since then (as of this call). No record changes (updated_at stays), as when WHOOP extends its API.
        Returns the change as applied."""
        resource = self._resource(kind)
        since_ms = None if since_days_ago is None else self.clock_ms() - int(since_days_ago * DAY)
        with self._lock:
            self.fields.add(resource, fields, since_ms)
        return {"resource": resource, "fields": fields, "since_ms": since_ms}

    def stop_field(self, kind: str, path: str) -> dict:
        """WHOOP stops sending a field (dotted path, e.g. `score.kilojoule`) on every record of `kind` it
        serves from now on, documented or added; records keep their updated_at."""
        resource = self._resource(kind)
        with self._lock:
            self.fields.remove(resource, path)
        return {"resource": resource, "path": path}

    def reset_fields(self, kind: str | None = None) -> None:
        """Serve `kind` (default: everything) as documented again: add_fields and stop_field undone."""
        with self._lock:
            self.fields.clear(None if kind is None else self._resource(kind))

    def _resource(self, kind: str) -> str:
        resource = RESOURCES.get(kind)
        if resource is None:
            raise ValueError(f"unknown resource {kind!r}; expected one of {sorted(set(RESOURCES.values()))}")
        return resource

    def served(self, resource: str, payload: dict) -> dict:
        """A response body as WHOOP serves it now (add_fields, stop_field): one record, or a page of them."""
        if isinstance(payload.get("records"), list):
            return {**payload, "records": [self._served_record(resource, r) for r in payload["records"]]}
        return self._served_record(resource, payload)

    def _served_record(self, resource: str, body: dict) -> dict:
        created = body.get("created_at")
        created_ms = to_ms(datetime.fromisoformat(created)) if isinstance(created, str) else None
        return self.fields.apply(resource, body, created_ms)

    # ----------------------------------------------------------------- webhooks
    def _notify(self, record: Record, action: str) -> None:
        """The webhook WHOOP sends for a change to `record` (none for cycles): v2 ids, for a recovery the
        UUID of its sleep."""
        if record.kind == "cycle":
            return
        record_id = record.body["sleep_id"] if record.kind == "recovery" else record.key
        self.webhooks.emit(self.athletes[record.athlete].user_id, str(record_id), f"{record.kind}.{action}")

    def configure_webhooks(
        self,
        url: str,
        retry_delays: list[float] | None = None,
        timeout: float = 1.0,
        concurrency: int = 4,
        client_id: str | None = None,
    ) -> dict:
        """Deliver webhooks to `url`, signed with the app's client secret (default: the sandbox's app), with
        WHOOP's retries (`retry_delays` seconds after each failed attempt; default WHOOP's hour)."""
        client_id = client_id or self.client_id
        app = self.oauth.apps.get(client_id)
        if app is None:
            raise ValueError("unknown client_id")
        self.webhooks.configure(url, app.client_secret, retry_delays, timeout, concurrency)
        return {
            "url": url,
            "retry_delays": list(self.webhooks.retry_delays),
            "timeout": self.webhooks.timeout,
        }

    def send_webhook(
        self, type: str, id: str, athlete: int = 0, user_id: int | None = None, trace_id: str | None = None
    ) -> dict:
        """Send an event as WHOOP would (for any id, or a `user_id` the sandbox does not know)."""
        if user_id is None:
            user_id = self._athlete(athlete).user_id
        return self.webhooks.emit(user_id, id, type, trace_id)

    def inject_webhook_fault(self, kind: str, count: int = 1, type_prefix: str = "") -> dict:
        """`drop` (never delivered) or `duplicate` (delivered twice) the next `count` events of a type
        prefix."""
        return self.webhooks.inject(kind, count, type_prefix)

    def wait_for_webhooks(self, timeout: float = 30.0) -> bool:
        """Block until every queued delivery has been answered or given up."""
        return self.webhooks.wait_idle(timeout)

    def start_new_cycle(self, athlete: int = 0) -> list[dict]:
        """The athlete falls asleep: the current cycle ends (and is scored), a new open one begins.

        Returns [closed cycle, new cycle].
        """
        with self._lock:
            person = self._athlete(athlete)
            now = self.clock_ms()
            cycles = person.records["cycle"]
            current = person.current_cycle()
            self._changes += 1
            rng = Random(f"whoop-sandbox:{self.seed}:change:{self._changes}")
            stamp = self._stamp()
            affected = []
            new_start = now - MINUTE
            if current is not None:
                inside = [
                    r
                    for kind in ("sleep", "workout")
                    for r in person.records[kind].items
                    if r.start_ms >= current.start_ms and r.end_ms is not None
                ]
                ends = [r.finished_ms + MINUTE for r in inside]
                new_start = max([new_start, current.start_ms + HOUR, *ends])
                current.end_ms = new_start
                current.body = {
                    **{k: v for k, v in current.body.items() if k not in ("timezone_offset", "score_state")},
                    "end": fmt(new_start),
                    "timezone_offset": current.body["timezone_offset"],
                    "score_state": current.body["score_state"],
                }
                workouts = [r for r in inside if r.kind == "workout"]
                current.hidden_score = cycle_score(rng, person, current.start_ms, new_start, workouts)
                current.body["score_state"] = "SCORED"
                current.body["updated_at"] = stamp
                affected.append(score_view(current))
                new_id = int(current.key) + 10
            else:
                new_id = 1_000_000_000 + athlete * 10_000_000 + 99_999_990
            while new_id in cycles.by_key:
                new_id += 1
            body = {
                "id": new_id,
                "user_id": person.user_id,
                "created_at": stamp,
                "updated_at": stamp,
                "start": fmt(new_start),
                "timezone_offset": person.timezone_offset,
                "score_state": "PENDING_SCORE",
            }
            score = cycle_score(rng, person, new_start, new_start + HOUR, [])
            opened = Record("cycle", new_id, new_start, None, body, score, person.index)
            cycles.add(opened)
            affected.append(score_view(opened))
            return affected

    def set_timezone_offset(self, athlete: int = 0, offset: str = "Z") -> str:
        """The athlete's zone changes (travel, or daylight saving time); returns the previous offset.

        Records made from now on carry `offset` ("Z" or "+HH:MM"/"-HH:MM"); those already made keep theirs.
        """
        if not TIMEZONE_OFFSET.fullmatch(offset):
            raise ValueError(f"offset must be 'Z' or +HH:MM / -HH:MM, got {offset!r}")
        with self._lock:
            person = self._athlete(athlete)
            previous, person.timezone_offset = person.timezone_offset, offset
            return previous

    # Operations exposed over HTTP under /_sandbox/ (POST with a JSON object of keyword arguments).
    CONTROL_OPERATIONS = (
        "rescore_pending",
        "add_past_workout",
        "edit_sleep",
        "delete_record",
        "restore_record",
        "start_new_cycle",
        "set_timezone_offset",
        "inject_fault",
        "set_fault_rate",
        "clear_faults",
        "clear_log",
        "grant_refresh_token",
        "credentials",
        "add_client",
        "expire_access_tokens",
        "edit_workout",
        "move_record",
        "record_near",
        "configure_webhooks",
        "send_webhook",
        "inject_webhook_fault",
        "wait_for_webhooks",
        "revoke_consent",
        "reset_rate_limits",
        "deactivate",
        "set_consent",
        "add_fields",
        "stop_field",
        "reset_fields",
    )
