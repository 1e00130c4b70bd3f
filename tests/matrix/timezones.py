"""`make test-timezones`: the suites that read or write times, on machines in zones far from UTC.

Users run the embedded default on laptops everywhere: every time the pipeline writes or compares must be UTC
(or carry its offset) whatever the machine's zone. Both signs, as far from UTC as zones go, and an offset that
is not a whole hour; which suites run where is below (`--full`, in `make test-all`, runs everything in each).

    .venv/bin/python tests/matrix/timezones.py [--only ZONE ...] [--full] [pytest args...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
import zones  # noqa: E402 - tests/ is not a package

TAP = "tap-whoop/tests"
SANDBOX = "sandbox/tests"
FAST = ["-m", "not slow or smoke"]
# What `--full` runs in each zone: every suite that reads or writes times, the pipelines included.
FULL = [TAP, SANDBOX, "tests/e2e", "tests/transform"]
WHY = {
    "Pacific/Kiritimati": "UTC+14, a day ahead",
    "Pacific/Pago_Pago": "UTC-11, a day behind",
    "Asia/Kathmandu": "UTC+5:45, not a whole hour",
}

# The pipelines (tap, target, dbt, Meltano, Airflow, each written time checked against UTC) already run far
# from UTC inside the suite (tests/zones.py), so in each zone `make test` runs only the time arithmetic of the
# tap and the sandbox: their fast subsets and console-script smoke tests. `--full` (make test-all) runs FULL
# in each zone, every pipeline in that zone too.


def offset(zone: str) -> str:
    text = datetime.now(UTC).astimezone(ZoneInfo(zone)).strftime("%z")
    return f"UTC{text[:3]}:{text[3:]}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only", action="append", default=[], help="run only the zones whose name contains this"
    )
    parser.add_argument("--full", action="store_true", help="the whole matrix (make test-all)")
    args, pytest_args = parser.parse_known_args()
    chosen = [z for z in zones.ALL if not args.only or any(o.lower() in z.lower() for o in args.only)]
    pytest = [str(Path(sys.executable).with_name("pytest")), "-q", "-p", "no:cacheprovider"]
    run = FULL if args.full else [TAP, SANDBOX, *FAST]
    results = []
    for zone in chosen:
        shown = " ".join(a if " " not in a else repr(a) for a in run)
        print(f"\n== test-timezones: TZ={zone} ({offset(zone)} now; {WHY[zone]}): {shown}", flush=True)
        env = {**os.environ, "TZ": zone, **({"WHOOP_TEST_ZONE": zone} if args.full else {})}
        began = time.monotonic()
        code = subprocess.call([*pytest, *run, *pytest_args], cwd=ROOT, env=env)
        results.append((zone, code, time.monotonic() - began, shown))

    print(f"\ntest-timezones: {len(results)} zones:")
    for zone, code, seconds, shown in results:
        verdict = "passed" if code == 0 else f"FAILED (pytest exit {code})"
        print(f"  {zone:<20} {offset(zone):<10} {verdict}, {seconds:.0f} s: {shown}")
    failed = [r for r in results if r[1] != 0]
    if failed:
        print(f"test-timezones: {len(failed)} of {len(results)} runs failed", file=sys.stderr)
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
