"""Benchmark many athletes under one WHOOP app against the offline sandbox and print measured figures.

    .venv/bin/python tap-whoop/scripts/benchmark_athletes.py [--quick]

1. Steady state on the 3-hourly schedule: real tap runs against the sandbox, eight a day over a week of
   simulated days (the tap's snapshot clock moves 3 hours per run), every API call counted from the sandbox's
   request log. Prints list calls per athlete per run, profile/body calls per athlete-day, API calls per
   athlete-day, and from them the athletes one app serves within WHOOP's 10,000 calls a day (goal: 300).
2. One run over 20 athletes (one with more than a year of history) at a scaled-down limit of 20 requests per
   5 s: calls, rate windows, 429s, wall time against the floor (the windows the calls made need, x 5 s: no
   client makes them in fewer), and when the fresh data and the long history were read.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

from tap_whoop.athletes.registry import AthleteRegistry
from tap_whoop.streams.endpoints import STREAM_TYPES
from tap_whoop.streams.incremental import WhoopCollectionStream
from tap_whoop.streams.snapshots import WhoopSnapshotStream
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


def sync(config: dict, state: dict | None) -> dict | None:
    """One tap run in this process (Singer output discarded); its last state."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        TapWhoop(config=dict(config), state=state, parse_env_config=False).sync_all()
    last = None
    for line in out.getvalue().splitlines():
        if line.startswith('{"type":"STATE"'):
            last = line
    return json.loads(last)["value"] if last else state


def team(sandbox, workdir: Path, athletes: int, name: str) -> dict:
    """A config for the sandbox's app with every athlete enrolled (as `tap-whoop athletes add` does)."""
    config = {
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
        "api_url": sandbox.api_url,
        "token_url": sandbox.token_url,
        "token_store": str(workdir / f"{name}.json"),
        "start_date": START_DATE,
    }
    registry = AthleteRegistry(config)
    for index in range(athletes):
        registry.import_refresh_token(sandbox.grant_refresh_token(athlete=index))
    return config


def steady_state(athletes: int, days: int, workdir: Path) -> dict[str, float]:
    with Sandbox(seed=7, days=60, athletes=athletes, rate_limits=[]) as sandbox:
        config = team(sandbox, workdir, athletes, "steady")
        real_clock, started = WhoopSnapshotStream.clock, time.time()
        sandbox.clear_log()
        state = sync(config, None)
        first = len([r for r in sandbox.request_log if r["path"].startswith(API_ROOT + "/")])
        per_run, snapshot_calls = [], 0
        try:
            for run in range(1, days * RUNS_PER_DAY + 1):
                simulated = started + run * 86400 / RUNS_PER_DAY
                WhoopSnapshotStream.clock = staticmethod(lambda at=simulated: at)
                sandbox.clear_log()
                state = sync(config, state)
                log = [r for r in sandbox.request_log if r["path"].startswith(API_ROOT + "/")]
                lists = [r for r in log if r["path"] in COLLECTIONS]
                snapshot_calls += sum(r["path"] in SNAPSHOTS for r in log)
                per_athlete = [sum(r["user_id"] == a.user_id for r in lists) for a in sandbox.athletes]
                per_run.append((len(log), per_athlete))
        finally:
            WhoopSnapshotStream.clock = real_clock
    runs = len(per_run)
    lists_per_run = [n for _, athletes_calls in per_run for n in athletes_calls]
    calls_per_athlete_day = sum(total for total, _ in per_run) / athletes / days
    served = math.floor(DAILY_LIMIT / calls_per_athlete_day)
    print(f"1. Steady state: {athletes} athletes, {runs} runs every 3 hours over {days} simulated days")
    print(f"   first run (heads, history, snapshots)   {first:6d} calls")
    print(
        f"   list calls per athlete per run          {sum(lists_per_run) / len(lists_per_run):6.2f}"
        f"   (max {max(lists_per_run)})"
    )
    print(f"   profile/body calls per athlete-day      {snapshot_calls / athletes / days:6.2f}")
    print(f"   API calls per athlete-day               {calls_per_athlete_day:6.2f}")
    print(f"   athletes one app serves ({DAILY_LIMIT:,}/day)   {served:6d}   (goal: 300)")
    at_300 = 300 * calls_per_athlete_day
    minutes = 300 * calls_per_athlete_day / RUNS_PER_DAY / MINUTE_LIMIT
    print(
        f"   at 300 athletes: {at_300:,.0f} calls/day, {DAILY_LIMIT - at_300:,.0f} left for new athletes' "
        f"history; a run takes >= {minutes:.1f} min at {MINUTE_LIMIT}/min"
    )
    return {
        "list_calls_per_run": sum(lists_per_run) / len(lists_per_run),
        "max_list_calls_per_run": max(lists_per_run),
        "snapshot_calls_per_athlete_day": snapshot_calls / athletes / days,
        "calls_per_athlete_day": calls_per_athlete_day,
        "athletes_served": served,
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


def summary_line(steady: dict[str, float], scaled: dict[str, float]) -> str:
    return (
        f"{steady['calls_per_athlete_day']:.2f} API calls per athlete-day in steady state "
        f"({steady['list_calls_per_run']:.2f} list calls per athlete per run), "
        f"{steady['athletes_served']:.0f} athletes per app within {DAILY_LIMIT:,} calls a day (goal 300); "
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
