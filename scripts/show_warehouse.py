"""Print what landed in the pipeline's DuckDB file: rows per table (raw, staging, marts) and the daily facts.

Usage: .venv/bin/python scripts/show_warehouse.py [PATH]   (default: $WHOOP_DUCKDB_PATH or data/whoop.duckdb)

The file is opened read_only: the root venv's DuckDB is newer than the 1.2.2 that the loader and dbt write
with, and read-only access never upgrades the file's storage format.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import duckdb

LAYER_ORDER = {"raw": 0, "staging": 1, "marts": 2}
DAILY_FACTS = "fct_daily_health"
GLIMPSE_COLUMNS = (
    "date_day",
    "strain",
    "recovery_score",
    "hrv_rmssd_milli",
    "resting_heart_rate",
    "sleep_performance_percentage",
    "hours_asleep",
    "hours_needed",
    "workout_count",
)


def layer_rank(schema: str) -> tuple[int, str]:
    """Order schemas raw → staging → marts whatever prefix dbt gave them (e.g. main_staging)."""
    for layer, rank in LAYER_ORDER.items():
        if schema == layer or schema.endswith(f"_{layer}"):
            return rank, schema
    return len(LAYER_ORDER), schema


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=os.environ.get("WHOOP_DUCKDB_PATH", "data/whoop.duckdb"))
    parser.add_argument("--days", type=int, default=7, help="how many recent days of daily facts to show")
    args = parser.parse_args(argv)

    if not Path(args.path).exists():
        print(f"No DuckDB file at {args.path}: run the pipeline first (make demo).", file=sys.stderr)
        return 1

    with duckdb.connect(args.path, read_only=True) as con:
        tables = con.sql(
            "select table_schema, table_name, table_type from information_schema.tables "
            "where table_schema not in ('information_schema', 'pg_catalog')"
        ).fetchall()
        if not tables:
            print(f"{args.path} holds no tables yet.")
            return 1

        print(f"\nWhat landed in {args.path}:\n")
        print(f"  {'schema':<16}{'table':<34}{'kind':<7}{'rows':>8}")
        facts = None
        for schema, table, kind in sorted(tables, key=lambda t: (layer_rank(t[0]), t[1])):
            # Identifiers come from information_schema, never from user input.
            (rows,) = con.execute(f'select count(*) from "{schema}"."{table}"').fetchone()  # noqa: S608
            print(f"  {schema:<16}{table:<34}{'view' if kind == 'VIEW' else 'table':<7}{rows:>8}")
            if table == DAILY_FACTS:
                facts = (schema, table)

        if facts is None:
            print(f"\n(no {DAILY_FACTS} table: did the dbt step run?)")
            return 0

        schema, table = facts
        available = {
            name
            for (name,) in con.execute(
                "select column_name from information_schema.columns"
                " where table_schema = ? and table_name = ?",
                [schema, table],
            ).fetchall()
        }
        columns = [c for c in GLIMPSE_COLUMNS if c in available] or sorted(available)[:8]
        order = "date_day" if "date_day" in available else columns[0]
        select_list = ", ".join(f'"{c}"' for c in columns)
        print(f"\nThe last {args.days} days of {schema}.{table}:\n")
        con.sql(
            f'select {select_list} from "{schema}"."{table}" order by "{order}" desc limit {int(args.days)}'  # noqa: S608
        ).show(max_width=200)
    return 0


if __name__ == "__main__":
    sys.exit(main())
