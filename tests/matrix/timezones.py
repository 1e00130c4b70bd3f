"""`make test-timezones`: the suites that read or write times, on machines in zones far from UTC.

Users run the embedded default on laptops everywhere: every time the pipeline writes or compares must be UTC
(or carry its offset) whatever the machine's zone. Both signs, as far from UTC as zones go, and an offset that
is not a whole hour; which suites run where is below (the whole set in every zone would take too long).

    .venv/bin/python tests/matrix/timezones.py [--only ZONE ...] [pytest args...]
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
TAP = "tap-whoop/tests"
E2E_DUCKDB = "tests/e2e/test_whoop_duckdb.py"
DBT_DUCKDB = "tests/transform/test_dbt_duckdb.py"
DBT_SNOWFLAKE = "tests/transform/test_dbt_fakesnow.py"

# (zone, why, suites): the tap and the whole DuckDB pipeline (tap, target, dbt, every written time checked
# against the run's UTC window) everywhere; the dbt project's own tests (incremental runs on both adapters,
# freshness) a day ahead, where the Snowflake path's incremental merge once failed. The Snowflake tests build
# the DuckDB project too, so the DuckDB dbt tests cost little more there.
ZONES = [
    ("Pacific/Kiritimati", "UTC+14, a day ahead", [TAP, E2E_DUCKDB, DBT_DUCKDB, DBT_SNOWFLAKE]),
    ("Pacific/Pago_Pago", "UTC-11, a day behind", [TAP, E2E_DUCKDB]),
    ("Asia/Kathmandu", "UTC+5:45, not a whole hour", [TAP, E2E_DUCKDB]),
]


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
    args, pytest_args = parser.parse_known_args()
    zones = [z for z in ZONES if not args.only or any(o.lower() in z[0].lower() for o in args.only)]
    pytest = [str(Path(sys.executable).with_name("pytest")), "-q", "-p", "no:cacheprovider"]
    results = []
    for zone, why, suites in zones:
        print(f"\n== test-timezones: TZ={zone} ({offset(zone)} now; {why}): {' '.join(suites)}", flush=True)
        began = time.monotonic()
        code = subprocess.call([*pytest, *suites, *pytest_args], cwd=ROOT, env={**os.environ, "TZ": zone})
        results.append((zone, code, time.monotonic() - began, len(suites)))

    print(f"\ntest-timezones: {len(results)} zones tried:")
    for zone, code, seconds, suites in results:
        verdict = "passed" if code == 0 else f"FAILED (pytest exit {code})"
        print(f"  {zone:<20} {offset(zone):<10} {suites} suites  {verdict}, {seconds:.0f} s")
    failed = [r for r in results if r[1] != 0]
    if failed:
        print(f"test-timezones: {len(failed)} of {len(results)} zones failed", file=sys.stderr)
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
