"""Benchmark many athletes under one WHOOP app against the offline sandbox and print measured figures.

    .venv/bin/python tap-whoop/scripts/benchmark_athletes.py [--quick]

1. Steady state on the 3-hourly schedule, polling and `webhooks` side by side: real tap runs against one
   sandbox, eight a day over a week of simulated days (the tap's clock moves 3 hours per run; each simulated
   day every athlete's latest sleep changes, so its signals are fetched, as a new night's would be), each mode
   with its own token store and state, every API call counted from the sandbox's request log. Prints list
   calls per athlete per run, profile/body calls per athlete-day (amortized over their weekly period),
   API calls per athlete-day, and from them the
   athletes one app serves within WHOOP's 10,000 calls a day (goals: 300 polling; with webhooks <= 13 calls,
   760). Then a day with the same changes for both (the webhook mode hears of some by event, loses others) and
   whether both warehouses end up holding the same records and deletions.
2. One run over 20 athletes (one with more than a year of history; sleep signals off, see
   benchmark_sleep_signals.py) at a scaled-down limit of 20 requests per 5 s: calls, rate windows, 429s,
   wall time against the floor (the windows the calls made need, x 5 s: no client makes them in fewer), and
   when the fresh data and the long history were read.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import io
import json
import logging
import math
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

from tap_whoop.athletes.registry import AthleteRegistry
from tap_whoop.deletions.events import WebhookEvent
from tap_whoop.stores import open_event_log
from tap_whoop.stores.events.log import EventLog
from tap_whoop.streams.base import WhoopStream
from tap_whoop.streams.endpoints import STREAM_TYPES
from tap_whoop.streams.incremental import WhoopCollectionStream
from tap_whoop.streams.snapshots import DEFAULT_REFRESH_DAYS, WhoopSnapshotStream
from tap_whoop.tap import TapWhoop
from tap_whoop.whoop import API_URL
from whoop_sandbox import Sandbox
from whoop_sandbox.process import SandboxProcess

DAILY_LIMIT = 10_000
RUNS_PER_DAY = 8  # every 3 hours
MINUTE_LIMIT = 100
START_DATE = "2020-01-01T00:00:00Z"
# The request log's paths: the API's root (as WHOOP's, so the sandbox's) and each stream's endpoint.
API_ROOT = urlparse(API_URL).path
COLLECTIONS = {API_ROOT + s.path for s in STREAM_TYPES if issubclass(s, WhoopCollectionStream)}
SNAPSHOTS = {API_ROOT + s.path for s in STREAM_TYPES if issubclass(s, WhoopSnapshotStream)}
KEYS = {s.name: s.primary_keys[0] for s in STREAM_TYPES if issubclass(s, WhoopStream)}


@dataclasses.dataclass
class Warehouse:
    """What a target would hold after the runs: the last version of each record, and the deletions."""

    records: dict[tuple[str, str], dict] = dataclasses.field(default_factory=dict)
    deleted: set[tuple[str, str]] = dataclasses.field(default_factory=set)

    def load(self, message: dict) -> None:
        stream, record = message["stream"], message["record"]
        if stream == "deleted_records":
            self.deleted.add((record["stream"], record["id"]))
        elif stream in KEYS:
            self.records[stream, str(record[KEYS[stream]])] = record


def sync(config: dict, state: dict | None, warehouse: Warehouse | None = None) -> dict | None:
    """One tap run in this process (Singer records loaded into `warehouse`, if given); its last state."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        TapWhoop(config=dict(config), state=state, parse_env_config=False).sync_all()
    last = None
    for line in out.getvalue().splitlines():
        if line.startswith('{"type":"STATE"'):
            last = line
        elif warehouse is not None and line.startswith('{"type":"RECORD"'):
            warehouse.load(json.loads(line))
    return json.loads(last)["value"] if last else state


def team(sandbox, workdir: Path, athletes: int, name: str, **settings: object) -> dict:
    """A config for the sandbox's app with every athlete enrolled (as `tap-whoop athletes add` does)."""
    config = {
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
        "api_url": sandbox.api_url,
        "token_url": sandbox.token_url,
        "token_store": str(workdir / f"{name}.json"),
        "start_date": START_DATE,
        **settings,
    }
    registry = AthleteRegistry(config)
    for index in range(athletes):
        registry.import_refresh_token(sandbox.grant_refresh_token(athlete=index))
    return config


@dataclasses.dataclass
class Mode:
    """One way of syncing the same athletes, with its own token store, event log, state and counts."""

    name: str
    config: dict
    state: dict | None = None
    first: int = 0
    calls: int = 0
    lists: list[int] = dataclasses.field(default_factory=list)
    snapshot_calls: int = 0
    change_calls: int = 0
    warehouse: Warehouse = dataclasses.field(default_factory=Warehouse)

    def run(self, sandbox) -> list[dict]:
        sandbox.clear_log()
        self.state = sync(self.config, self.state, self.warehouse)
        return [r for r in sandbox.request_log if r["path"].startswith(API_ROOT + "/")]


def plant_workouts(sandbox, athletes: int) -> list[dict[int, str]]:
    """Per athlete, workouts 2, 4 and 6 days old that the day of changes edits or deletes, logged before the
    first run so both modes have them: what lies at a given age in the generated history changes with the
    calendar day (a workout logged late on that day could be the one nearest "4 days ago")."""
    return [
        {days: sandbox.add_past_workout(athlete=index, days_ago=days)["id"] for days in (2, 4, 6)}
        for index in range(athletes)
    ]


def make_changes(sandbox, planted: list[dict[int, str]], events: EventLog) -> int:
    """The same changes for both modes, per athlete: a workout edited and one logged late (both announced), a
    workout edited whose delivery WHOOP gave up on, a workout deleted (announced) and a sleep deleted whose
    events were lost. Only `events` (the webhook mode's log) hears of them. Returns the changes per
    athlete."""
    received = dt.datetime.now(dt.UTC)

    def announce(kind: str, record_id: str, index: int) -> None:
        event = WebhookEvent(sandbox.athletes[index].user_id, record_id, kind, str(uuid.uuid4()))
        events.append(event, received)

    for index, workouts in enumerate(planted):
        announce("workout.updated", sandbox.edit_workout(workout_id=workouts[2])["id"], index)
        announce("workout.updated", sandbox.add_past_workout(athlete=index, days_ago=3)["id"], index)
        sandbox.edit_workout(workout_id=workouts[6])  # its delivery lost
        sandbox.delete_record("workout", workouts[4])
        announce("workout.deleted", workouts[4], index)
        sandbox.delete_record("sleep", sandbox.record_near("sleep", athlete=index, days_ago=5)["id"])
    return 5


def steady_state(athletes: int, days: int, workdir: Path) -> dict[str, dict[str, float]]:
    """Both modes against one sandbox, run for run: polling lists the four collections every run; with
    `webhooks` sleeps, recoveries and workouts come from the events and a daily sweep. Then the same changes
    reach both and a day of runs follows, after which both warehouses must hold the same data."""
    with Sandbox(seed=7, days=60, athletes=athletes, rate_limits=[]) as sandbox:
        modes = [
            Mode("polling", team(sandbox, workdir, athletes, "polling")),
            Mode("webhooks", team(sandbox, workdir, athletes, "webhooks", webhooks=True)),
        ]
        ids = [a.user_id for a in sandbox.athletes]
        planted = plant_workouts(sandbox, athletes)
        real_clock, started = WhoopStream.clock, time.time()
        try:
            for mode in modes:
                mode.first = len(mode.run(sandbox))
            for run in range(1, (days + 1) * RUNS_PER_DAY + 1):
                simulated = started + run * 86400 / RUNS_PER_DAY
                WhoopStream.clock = staticmethod(lambda at=simulated: at)
                if run <= days * RUNS_PER_DAY and run % RUNS_PER_DAY == 1:
                    # A night a day: each athlete's latest sleep changes (the sandbox's calendar stands
                    # still), so its signals are fetched once a day, as a new night's would be.
                    for index in range(athletes):
                        sandbox.edit_sleep(athlete=index, days_ago=1)
                if run == days * RUNS_PER_DAY + RUNS_PER_DAY // 2:
                    events = open_event_log(modes[1].config["token_store"], sandbox.client_id)
                    changes = make_changes(sandbox, planted, events)
                for mode in modes:
                    log = mode.run(sandbox)
                    if run > days * RUNS_PER_DAY:  # the day of the changes: counted apart
                        mode.change_calls += len(log)
                        continue
                    mode.calls += len(log)
                    mode.snapshot_calls += sum(r["path"] in SNAPSHOTS for r in log)
                    lists = [r for r in log if r["path"] in COLLECTIONS]
                    mode.lists += [sum(r["user_id"] == user_id for r in lists) for user_id in ids]
        finally:
            WhoopStream.clock = real_clock
    polling, webhooks = modes
    same = polling.warehouse == webhooks.warehouse
    results = {m.name: figures(m, athletes, days) for m in modes}
    print(f"1. Steady state: {athletes} athletes, {days * RUNS_PER_DAY} runs every 3 hours over {days} days")
    print(f"   {'':44s}{'polling':>10s}{'webhooks':>10s}")
    rows = [
        ("first run (heads, history, snapshots)", "first", "{:10.0f}"),
        ("list calls per athlete per run", "list_calls_per_run", "{:10.2f}"),
        ("most list calls of an athlete in a run", "max_list_calls_per_run", "{:10.0f}"),
        ("profile/body per athlete-day (amortized)", "snapshot_calls_per_athlete_day", "{:10.2f}"),
        ("API calls per athlete-day", "calls_per_athlete_day", "{:10.2f}"),
        (f"athletes one app serves ({DAILY_LIMIT:,}/day)", "athletes_served", "{:10.0f}"),
    ]
    for label, key, form in rows:
        print(f"   {label:44s}" + "".join(form.format(results[m.name][key]) for m in modes))
    print(
        f"2. A day with {changes} changes per athlete (2 announced edits, 1 edit whose delivery was lost, "
        "1 announced deletion, 1 lost deletion)"
    )
    print(
        f"   {'API calls per athlete that day':44s}"
        + "".join(f"{m.change_calls / athletes:10.2f}" for m in modes)
    )
    print(
        f"   same data in both warehouses: {'yes' if same else 'NO'} ({len(polling.warehouse.records)} "
        f"records, {len(polling.warehouse.deleted)} deletions)"
    )
    for mode in modes:
        results[mode.name]["change_day_calls_per_athlete"] = mode.change_calls / athletes
    results["same_data"] = {"equal": float(same), "deletions": float(len(polling.warehouse.deleted))}
    return results


def figures(mode: Mode, athletes: int, days: int) -> dict[str, float]:
    """The mode's steady state per athlete-day. Profile and body are re-read once per profile_refresh_days at
    a point of the period set by the athlete's user_id (snapshots.stagger): which athletes fall due within a
    few measured days depends on the date, so their pair counts amortized over the period (what the tap
    guarantees), and the reads seen are checked against it (`snapshot_reads_seen`: one per athlete)."""
    snapshot_per_day = len(SNAPSHOTS) / DEFAULT_REFRESH_DAYS
    calls_per_athlete_day = (mode.calls - mode.snapshot_calls) / athletes / days + snapshot_per_day
    return {
        "first": mode.first,
        "list_calls_per_run": sum(mode.lists) / len(mode.lists),
        "max_list_calls_per_run": max(mode.lists),
        "snapshot_calls_per_athlete_day": snapshot_per_day,
        "snapshot_reads_seen": mode.snapshot_calls / len(SNAPSHOTS),
        "calls_per_athlete_day": calls_per_athlete_day,
        "athletes_served": math.floor(DAILY_LIMIT / calls_per_athlete_day),
    }


def scaled_run(athletes: int, workdir: Path) -> dict[str, float]:
    limit, window, long = 20, 5.0, 7
    args = ["--seed", "31", "--days", "20", "--athletes", str(athletes), "--athlete-days", f"{long}=400",
            "--rate-limits", f"{limit}/{window:g},{DAILY_LIMIT}/86400"]  # fmt: skip
    with SandboxProcess(workdir, *args) as sandbox:
        creds = sandbox.credentials
        config = {
            **{k: creds[k] for k in ("client_id", "client_secret", "api_url", "token_url")},
            "token_store": str(workdir / "scaled.json"),
            "start_date": START_DATE,
            # The schedule of list calls at the limit; the signals' backfill (a call per night: ~10 minutes
            # more of this run) has its own benchmark, benchmark_sleep_signals.py.
            "sleep_signals": False,
        }
        registry = AthleteRegistry(config)
        for index in range(athletes):
            registry.import_refresh_token(str(sandbox.call("grant_refresh_token", athlete=index)))
        long_id = sandbox.get("info")["athletes"][long]
        sandbox.call("reset_rate_limits")
        sandbox.call("clear_log")
        began = time.monotonic()
        sync(config, None)
        wall = time.monotonic() - began
        log = [r for r in sandbox.log() if r["path"].startswith(API_ROOT + "/")]
    needed = math.ceil(len(log) / limit)
    windows = len({r["rate_window"] for r in log})
    floor = needed * window
    t0 = log[0]["ts"]
    heads = [r["ts"] - t0 for r in log if r["path"] in COLLECTIONS and "end" not in r["params"]]
    long_history = [r["ts"] - t0 for r in log if r["user_id"] == long_id and "end" in r["params"]]
    print(f"\n2. One run over {athletes} athletes at {limit} requests per {window:g} s (one with 400 days)")
    print(f"   API calls                {len(log):8d}")
    print(f"   429 responses            {sum(r['status'] == 429 for r in log):8d}")
    print(f"   rate windows used        {windows:8d}   (needed for the calls: {needed})")
    print(f"   wall time                {wall:8.1f} s   (the whole run, start-up included)")
    print(f"   floor                    {floor:8.1f} s   (windows needed x {window:g} s)")
    print(f"   wall / floor             {wall / floor:8.3f}   (goal <= 1.05)")
    print(f"   everyone's fresh data by {max(heads):8.1f} s")
    print(f"   long history read        {min(long_history):8.1f} s .. {max(long_history):.1f} s")
    others = [r["ts"] - t0 for r in log if r["user_id"] != long_id and "end" in r["params"]]
    print(f"   the others' history done {max(others, default=0.0):8.1f} s")
    return {
        "calls": len(log),
        "429s": sum(r["status"] == 429 for r in log),
        "windows": windows,
        "windows_needed": needed,
        "wall_seconds": wall,
        "floor_seconds": floor,
        "fresh_data_by": max(heads),
        "long_history_from": min(long_history),
    }


def summary_line(steady: dict[str, dict[str, float]], scaled: dict[str, float]) -> str:
    polling, webhooks = steady["polling"], steady["webhooks"]
    return (
        f"API calls per athlete-day in steady state: polling {polling['calls_per_athlete_day']:.2f} "
        f"({polling['athletes_served']:.0f} athletes per app), "
        f"webhooks {webhooks['calls_per_athlete_day']:.2f} "
        f"({webhooks['athletes_served']:.0f} athletes per app; goal <= 13, >= 760), same data: "
        f"{'yes' if steady['same_data']['equal'] else 'NO'}; "
        f"scaled run: {scaled['calls']:.0f} calls, {scaled['429s']:.0f} 429s, "
        f"{scaled['windows']:.0f} windows (needed {scaled['windows_needed']:.0f}), "
        f"wall {scaled['wall_seconds']:.1f} s / floor {scaled['floor_seconds']:.1f} s = "
        f"{scaled['wall_seconds'] / scaled['floor_seconds']:.3f} (goal <= 1.05)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 athletes over 2 days; 8 in the scaled run")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="tap-whoop-athletes-") as tmp:
        workdir = Path(tmp)
        steady = steady_state(5 if args.quick else 10, 2 if args.quick else 7, workdir)
        scaled = scaled_run(8 if args.quick else 20, workdir)
    print(f"\n{summary_line(steady, scaled)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
