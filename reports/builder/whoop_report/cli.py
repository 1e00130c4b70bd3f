"""`whoop-report build`: what `make report` and `meltano invoke evidence:build` run.

Settings come from the environment Meltano prepares (meltano.yml, utility `evidence`): WHOOP_REPORT_WAREHOUSE
(duckdb in dev, snowflake in prod, postgres in postgres), WHOOP_DUCKDB_PATH, and for Snowflake the SNOWFLAKE_*
variables dbt uses, for PostgreSQL libpq's PG* variables.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .build import BuildError, Report, build, default_root
from .sources import WAREHOUSES, ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="whoop-report", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser("build", help="build the static site into reports/build/")
    build_parser.add_argument(
        "--warehouse",
        choices=WAREHOUSES,
        default=os.environ.get("WHOOP_REPORT_WAREHOUSE") or "duckdb",
        help="where the marts are (default: $WHOOP_REPORT_WAREHOUSE, else duckdb)",
    )
    build_parser.add_argument(
        "--duckdb-path",
        type=Path,
        default=Path(os.environ["WHOOP_DUCKDB_PATH"]) if os.environ.get("WHOOP_DUCKDB_PATH") else None,
        help="the DuckDB warehouse (default: $WHOOP_DUCKDB_PATH)",
    )
    build_parser.add_argument(
        "--project-dir", type=Path, default=None, help="the Evidence project (reports/)"
    )
    args = parser.parse_args(argv)

    report = Report((args.project_dir or default_root()).resolve())
    try:
        index = build(report, args.warehouse, os.environ, args.duckdb_path)
    except (ConfigError, BuildError) as error:
        print(f"whoop-report: {error}", file=sys.stderr)
        return 1
    print(f"report: built {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
