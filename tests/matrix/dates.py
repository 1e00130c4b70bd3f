"""`make test-dates`: the sandbox's and the tap's suites at fixed dates (DST changes, a year end) and at
dates drawn at random.

Each fixed date starts 45 seconds before the instant it is about (a daylight-saving change in the zone the
run sets, or a year end), so the change happens while the tests run. Besides them, `--random N` dates (2 by
default) are drawn anywhere in 2026-2030, each with a zone drawn from ZONES, from a seed that is printed
(and taken from `--seed` or WHOOP_TEST_DATES_SEED to replay a failure). Every Python process of the run is
moved there (time_travel/sitecustomize.py); the run checks that it really was, then prints what it tried.

What runs at each date: the fast tests that do time arithmetic on the real clock (marked `clock`: generated
history relative to today, windows, bookmarks, expiry, budgets) and the console-script smoke tests
(`-m "(clock and not slow) or smoke"`, under a minute). The rest of the fast subset (HTTP faults, stores,
the web service, the layout) reads no calendar, and runs once in the suite and in each interpreter lane.
`--full` runs both suites whole (`make test-all`).

    .venv/bin/python tests/matrix/dates.py [--only LABEL ...] [--random N] [--seed S] [--full] [pytest args]
"""

from __future__ import annotations

import argparse
import os
import random
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

# Random dates fall anywhere in these years, in one of these zones (both signs, half and quarter hours,
# southern-hemisphere summer time).
RANDOM_RANGE = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC))
ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "America/Los_Angeles",
    "Australia/Sydney",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
    "America/Sao_Paulo",
]
FAST = ["-m", "(clock and not slow) or smoke"]

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


def draw(count: int, seed: int) -> list[tuple[str, datetime, str]]:
    """`count` (label, instant, zone) drawn reproducibly from `seed`."""
    rng = random.Random(seed)
    low, high = (int(t.timestamp()) for t in RANDOM_RANGE)
    drawn = []
    for n in range(count):
        instant = datetime.fromtimestamp(rng.randrange(low, high), UTC)
        drawn.append((f"random date {n + 1} (seed {seed})", instant, rng.choice(ZONES)))
    return drawn


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only", action="append", default=[], help="run only the dates whose label contains this"
    )
    parser.add_argument("--random", type=int, default=2, metavar="N", help="random dates (default 2)")
    parser.add_argument(
        "--seed",
        type=int,
        default=int(os.environ.get("WHOOP_TEST_DATES_SEED") or random.SystemRandom().randrange(10**6)),
        help="the random dates' seed (default: WHOOP_TEST_DATES_SEED, else drawn and printed)",
    )
    parser.add_argument("--full", action="store_true", help="the whole suites, not the fast subset")
    args, pytest_args = parser.parse_known_args()
    dates = DATES + draw(args.random, args.seed)
    dates = [d for d in dates if not args.only or any(o.lower() in d[0].lower() for o in args.only)]
    print(
        f"test-dates: {args.random} random dates from seed {args.seed}"
        f" (replay: make test-dates WHOOP_TEST_DATES_SEED={args.seed})",
        flush=True,
    )
    # time_machine is imported by sitecustomize before pytest starts: its pytest plugin (unused) stays off.
    pytest = [str(Path(sys.executable).with_name("pytest")), "-q", "-p", "no:cacheprovider"]
    pytest += ["-p", "no:time_machine", *SUITES, *([] if args.full else FAST)]
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
        print(f"  {instant:%Y-%m-%d %H:%M:%S}Z  {zone:<19} {label:<38} {verdict}, {seconds:.0f} s")
    failed = [r for r in results if r[3] != 0]
    if failed:
        print(f"test-dates: {len(failed)} of {len(results)} dates failed", file=sys.stderr)
        print(f"test-dates: replay with WHOOP_TEST_DATES_SEED={args.seed}", file=sys.stderr)
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
