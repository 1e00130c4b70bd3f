"""Raw-table plumbing for the dbt tests: read the DuckDB raw schema and copy it into fakesnow the way
target-snowflake lays it out (schema RAW, upper-case columns)."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import TYPE_CHECKING, Any

import duckdb

if TYPE_CHECKING:
    from pathlib import Path

RAW_TABLES = (
    "cycles", "sleeps", "recoveries", "workouts", "profile", "body_measurement", "deleted_records",
    "athletes", "sleep_signals",
)  # fmt: skip
FACT_TABLES = ("fct_cycles", "fct_daily_health", "fct_sleeps", "fct_workouts", "fct_sleep_vitals")
MART_TABLES = ("dim_date", "dim_user", *FACT_TABLES)

# target-snowflake's column types for the JSON schema types target-duckdb stored.
_SNOWFLAKE_TYPES = {
    "TIMESTAMP": "TIMESTAMP_NTZ",
    "HUGEINT": "NUMBER(38,0)",
    "BIGINT": "NUMBER(38,0)",
    "INTEGER": "NUMBER(38,0)",
    "SMALLINT": "NUMBER(38,0)",
    "DOUBLE": "FLOAT",
    "VARCHAR": "VARCHAR",
    "BOOLEAN": "BOOLEAN",
    # An array property (sleep_signals.stream): target-snowflake flattens it into JSON text.
    "JSON": "VARCHAR",
}


def live_keys_sql(raw: str, table: str, stream: str, key: str = "id") -> str:
    """Counts a raw table's keys, but not those deleted at WHOOP and not served again since (as staging)."""
    return f"""
        select count(distinct r.{key}) from {raw}.{table} as r
        where not exists (
            select 1 from {raw}.deleted_records as d
            where d.stream = '{stream}' and d.id = cast(r.{key} as varchar)
            and d.deleted_at >= (select max(v.updated_at) from {raw}.{table} as v where v.{key} = r.{key})
        )
    """


def read_raw(duckdb_path: Path) -> dict[str, tuple[list[tuple[str, str]], list[tuple]]]:
    """Every raw table as (columns with DuckDB types, rows)."""
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        tables = {}
        for table in RAW_TABLES:
            columns = [(name, type_) for name, type_, *_ in con.execute(f"describe raw.{table}").fetchall()]
            rows = con.execute(f"select * from raw.{table}").fetchall()
            tables[table] = (columns, rows)
        return tables


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float | decimal.Decimal):
        return repr(value) if not isinstance(value, decimal.Decimal) else str(value)
    if isinstance(value, dt.datetime):
        return f"'{value.isoformat(sep=' ')}'::TIMESTAMP_NTZ"
    return "'" + str(value).replace("'", "''") + "'"


def load_raw_into_snowflake(cursor: Any, raw: dict, database: str = "WHOOP", schema: str = "RAW") -> None:
    """Create and fill the raw tables as target-snowflake would (unquoted, hence upper-case, identifiers).

    Literal INSERTs rather than bound parameters: fakesnow's server mangles bound NULL timestamps."""
    cursor.execute(f"create database if not exists {database}")
    cursor.execute(f"create schema if not exists {database}.{schema}")
    for table, (columns, rows) in raw.items():
        column_sql = ", ".join(f'"{name.upper()}" {_SNOWFLAKE_TYPES[type_]}' for name, type_ in columns)
        cursor.execute(f"create or replace table {database}.{schema}.{table} ({column_sql})")
        names = ", ".join(f'"{name.upper()}"' for name, _ in columns)
        for start in range(0, len(rows), 500):
            values = ", ".join(
                "(" + ", ".join(_literal(v) for v in row) + ")" for row in rows[start : start + 500]
            )
            if values:
                cursor.execute(f"insert into {database}.{schema}.{table} ({names}) values {values}")
