"""`make test-dates`: the sandbox's and the tap's suites at fixed dates (DST changes, a year end).

Each date starts 45 seconds before the instant it is about (a daylight-saving change in the zone the run
sets, or a year end), so the change happens while the tests run. Every Python process of the run is moved
there (time_travel/sitecustomize.py); the run checks that it really was, then prints what it tried.

    .venv/bin/python tests/matrix/dates.py [--only LABEL ...] [pytest args...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIME_TRAVEL = Path(__file__).resolve().parent / "time_travel"
SUITES = ["sandbox/tests", "tap-whoop/tests"]
LEAD = timedelta(seconds=45)

# (label, the instant in UTC, the machine's zone during the run)
# Five runs of ~90 s: both changes on both sides of the Atlantic, over thirteen months.
DATES = [
    ("EU autumn DST change", datetime(2026, 10, 25, 1, 0, tzinfo=UTC), "Europe/Berlin"),
    ("year end (UTC), Sydney in summer time", datetime(2027, 1, 1, 0, 0, tzinfo=UTC), "Australia/Sydney"),
    ("US spring DST change", datetime(2027, 3, 14, 7, 0, tzinfo=UTC), "America/New_York"),
    ("EU spring DST change", datetime(2027, 3, 28, 1, 0, tzinfo=UTC), "Europe/Berlin"),
    ("US autumn DST change", datetime(2027, 11, 7, 6, 0, tzinfo=UTC), "America/New_York"),
]

PROBE = (
    "import datetime as d; n = d.datetime.now(d.UTC); "
    "print(n.isoformat(), n.astimezone().strftime('%H:%M:%S_%Z_%z'))"
)


def environment(start: datetime, zone: str) -> dict[str, str]:
    env = dict(os.environ)
    env["WHOOP_TEST_TIME_OFFSET"] = str(start.timestamp() - time.time())
    env["TZ"] = zone
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TIME_TRAVEL), env.get("PYTHONPATH")]))
    return env


def check_travel(env: dict[str, str], start: datetime) -> str:
    """The moved clock as a child process sees it; fails unless it is the intended date."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    seen = datetime.fromisoformat(out[0])
    if abs((seen - start).total_seconds()) > 30:
        wanted = f"{start:%Y-%m-%d %H:%M:%S}Z"
        raise SystemExit(f"test-dates: the clock did not move (wanted {wanted}, saw {seen})")
    clock, zone, offset = out[1].split("_")
    return f"{seen:%Y-%m-%d %H:%M:%S}Z ({clock} {zone}, UTC{offset})"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only", action="append", default=[], help="run only the dates whose label contains this"
    )
    args, pytest_args = parser.parse_known_args()
    dates = [d for d in DATES if not args.only or any(o.lower() in d[0].lower() for o in args.only)]
    # time_machine is imported by sitecustomize before pytest starts: its pytest plugin (unused) stays off.
    pytest = [str(Path(sys.executable).with_name("pytest")), "-q", "-p", "no:cacheprovider"]
    pytest += ["-p", "no:time_machine", *SUITES]
    results = []
    for label, instant, zone in dates:
        start = instant - LEAD
        env = environment(start, zone)
        seen = check_travel(env, start)
        print(f"\n== test-dates: {label}: starting at {seen}, TZ={zone}", flush=True)
        began = time.monotonic()
        code = subprocess.call([*pytest, *pytest_args], cwd=ROOT, env=env)
        results.append((label, instant, zone, code, time.monotonic() - began))

    print(f"\ntest-dates: {len(results)} dates tried:")
    for label, instant, zone, code, seconds in results:
        verdict = "passed" if code == 0 else f"FAILED (pytest exit {code})"
        print(f"  {instant:%Y-%m-%d %H:%M}Z  {zone:<17} {label:<38} {verdict}, {seconds:.0f} s")
    failed = [r for r in results if r[3] != 0]
    if failed:
        print(f"test-dates: {len(failed)} of {len(results)} dates failed", file=sys.stderr)
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
