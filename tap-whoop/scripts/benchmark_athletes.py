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
import logging
import math
import sys
import tempfile
import time
from pathlib import Path

DAILY_LIMIT = 10_000
RUNS_PER_DAY = 8  # every 3 hours
MINUTE_LIMIT = 100
START_DATE = "2020-01-01T00:00:00Z"
COLLECTIONS = ("/developer/v2/cycle", "/developer/v2/activity/sleep", "/developer/v2/recovery",
               "/developer/v2/activity/workout")  # fmt: skip
SNAPSHOTS = ("/developer/v2/user/profile/basic", "/developer/v2/user/measurement/body")


def sync(config: dict, state: dict | None) -> dict | None:
    """One tap run in this process (Singer output discarded); its last state."""
    from tap_whoop.tap import TapWhoop

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        TapWhoop(config=dict(config), state=state, parse_env_config=False).sync_all()
    last = None
    for line in out.getvalue().splitlines():
        if line.startswith('{"type":"STATE"'):
            last = line
    import json

    return json.loads(last)["value"] if last else state


def team(sandbox, workdir: Path, athletes: int, name: str) -> dict:
    """A config for the sandbox's app with every athlete enrolled (as `tap-whoop athletes add` does)."""
    from tap_whoop.athletes import AthleteRegistry

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
    from tap_whoop.snapshots import WhoopSnapshotStream
    from whoop_sandbox import Sandbox

    with Sandbox(seed=7, days=60, athletes=athletes, rate_limits=[]) as sandbox:
        config = team(sandbox, workdir, athletes, "steady")
        real_clock, started = WhoopSnapshotStream.clock, time.time()
        sandbox.clear_log()
        state = sync(config, None)
        first = len([r for r in sandbox.request_log if r["path"].startswith("/developer/")])
        per_run, snapshot_calls = [], 0
        try:
            for run in range(1, days * RUNS_PER_DAY + 1):
                simulated = started + run * 86400 / RUNS_PER_DAY
                WhoopSnapshotStream.clock = staticmethod(lambda at=simulated: at)
                sandbox.clear_log()
                state = sync(config, state)
                log = [r for r in sandbox.request_log if r["path"].startswith("/developer/")]
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


class SandboxProcess:
    """`python -m whoop_sandbox` in its own process (as WHOOP would be: no share of this interpreter)."""

    def __init__(self, workdir: Path, *args: str) -> None:
        self.credentials_path = workdir / "sandbox.json"
        self.args = [sys.executable, "-m", "whoop_sandbox", "--port", "0", *args,
                     "--credentials-out", str(self.credentials_path)]  # fmt: skip

    def __enter__(self) -> SandboxProcess:
        import json
        import subprocess

        self.process = subprocess.Popen(self.args, stdout=subprocess.DEVNULL)  # noqa: S603
        deadline = time.monotonic() + 120
        while not self.credentials_path.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the sandbox did not start")
            time.sleep(0.1)
        self.credentials = json.loads(self.credentials_path.read_text())
        self.control = self.credentials["api_url"].removesuffix("/developer") + "/_sandbox"
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)

    def call(self, operation: str, **kwargs: object) -> object:
        import requests

        response = requests.post(f"{self.control}/{operation}", json=kwargs, timeout=30)
        response.raise_for_status()
        return response.json()["result"]

    def get(self, what: str) -> dict:
        import requests

        return requests.get(f"{self.control}/{what}", timeout=30).json()


def scaled_run(athletes: int, workdir: Path) -> dict[str, float]:
    from tap_whoop.athletes import AthleteRegistry

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
        log = [r for r in sandbox.get("log")["requests"] if r["path"].startswith("/developer/")]
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
