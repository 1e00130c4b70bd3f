"""Test-only patches that let the production Snowflake plugins talk to a fakesnow server on loopback.

Production definitions stay exactly what runs against real Snowflake; these patches are applied only by the
wrapper entry points in this directory, which the end-to-end tests swap in (see overlay.py):

- every `snowflake.connector.connect(...)` gains host/port/protocol from SNOWFLAKE_HOST / SNOWFLAKE_PORT /
  SNOWFLAKE_PROTOCOL (the variables transform/profiles.yml reads too), plus short timeouts: fakesnow reports
  a server-side error as HTTP 500, which the connector would otherwise retry for minutes. This covers
  meltano-state-backend-snowflake (inside Meltano) and target-snowflake (through snowflake-sqlalchemy);
- target-snowflake loads through plain SQL (delete the batch's keys, then INSERT) instead of its internal
  stage's PUT + MERGE/COPY path, which fakesnow does not implement. The upsert semantics are the same.

Only the standard library is imported at module level: this file runs in Meltano's venv and in the plugin's.
"""

from __future__ import annotations

import os
import typing as t

if t.TYPE_CHECKING:
    from collections.abc import Iterable

# Seconds; a fakesnow round trip on loopback takes milliseconds, so anything slower is a hang: fail on it.
NETWORK_TIMEOUT = 60


def connect_overrides() -> dict[str, t.Any]:
    """Connect arguments pointing the Snowflake connector at the fakesnow server named in the environment."""
    host = os.environ.get("SNOWFLAKE_HOST")
    if not host:
        msg = "SNOWFLAKE_HOST is not set: the fakesnow wrappers only run against a local fakesnow server"
        raise RuntimeError(msg)
    return {
        "host": host,
        "port": int(os.environ.get("SNOWFLAKE_PORT", "443")),
        "protocol": os.environ.get("SNOWFLAKE_PROTOCOL", "http"),
        "network_timeout": NETWORK_TIMEOUT,
        "login_timeout": NETWORK_TIMEOUT,
    }


def patch_connector() -> None:
    """Make every snowflake.connector.connect() call (module attribute lookups included) use fakesnow."""
    import snowflake.connector

    original = snowflake.connector.Connect

    def connect(**kwargs: t.Any) -> t.Any:
        # No out-of-band telemetry: tests talk to loopback only.
        session = {
            **(kwargs.pop("session_parameters", None) or {}),
            "CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False,
        }
        return original(**{**kwargs, **connect_overrides(), "session_parameters": session})

    snowflake.connector.connect = snowflake.connector.Connect = connect


def patch_target_snowflake() -> None:
    """Replace target-snowflake's stage-based load with delete-by-key + INSERT over the same connection."""
    import sqlalchemy as sa
    from singer_sdk.sql.sink import SQLSink
    from target_snowflake.sinks import SnowflakeSink

    def bulk_insert_records(
        self: SnowflakeSink,
        full_table_name: t.Any,
        schema: dict,
        records: Iterable[dict[str, t.Any]],
    ) -> int | None:
        records = list(records)
        if self.key_properties and self.config.get("load_method", "upsert") == "upsert":
            # Last record per key wins, as in target-snowflake's MERGE (which ranks the staged rows).
            latest = {tuple(r.get(k) for k in self.key_properties): r for r in records}
            records = list(latest.values())
            table = self.connector.get_table(full_table_name)
            columns = {self.conform_name(k, "column"): k for k in self.key_properties}
            condition = sa.and_(*(table.c[col] == sa.bindparam(f"key_{key}") for col, key in columns.items()))
            with self.connector._connect() as conn, conn.begin():
                conn.execute(
                    sa.delete(table).where(condition),
                    [{f"key_{k}": r.get(k) for k in self.key_properties} for r in records],
                )
        if not records:
            return 0
        return SQLSink.bulk_insert_records(self, full_table_name, schema, records)

    SnowflakeSink.bulk_insert_records = bulk_insert_records
