"""The report's one data source, `whoop`, pointed at the warehouse the Meltano environment uses.

The pages and source queries are the same for all: DuckDB (the embedded default, opened read-only, so
the newer DuckDB inside Evidence never rewrites the file the pinned loader and dbt use), Snowflake (prod) and
PostgreSQL (libpq's PG* variables, as the pipeline reads them). The connection file holds no secret:
passwords and keys reach Evidence as EVIDENCE_SOURCE__whoop__* variables of its process.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

SOURCE = "whoop"
WAREHOUSES = ("duckdb", "snowflake", "postgres")
# libpq's PGSSLMODE as node-postgres (Evidence's driver) takes it: it cannot fall back from SSL to plain as
# `prefer` and `allow` do, so those connect unencrypted; `require` encrypts without checking the certificate.
SSL_MODES = {"disable": False, "allow": False, "prefer": False, "require": {"rejectUnauthorized": False}}


class ConfigError(Exception):
    """A setting the user must fix; the message names the cause and the fix."""


def duckdb_connection(source_dir: Path, duckdb_path: Path) -> dict:
    if not duckdb_path.is_file():
        raise ConfigError(
            f"no DuckDB warehouse at {duckdb_path}: run the pipeline first (make demo, or meltano run "
            "whoop-duckdb) or point WHOOP_DUCKDB_PATH at the file"
        )
    # Evidence's DuckDB connector joins the file name to the source directory.
    filename = os.path.relpath(duckdb_path.resolve(), source_dir.resolve())
    return {"name": SOURCE, "type": "duckdb", "options": {"filename": filename}}


def snowflake_connection(env: Mapping[str, str]) -> tuple[dict, dict[str, str]]:
    """The connection file's options and the secret options as Evidence's environment variables."""
    missing = [name for name in ("SNOWFLAKE_ACCOUNT", "SNOWFLAKE_USER") if not env.get(name)]
    if missing:
        raise ConfigError(f"{' and '.join(missing)} must be set to build the report from Snowflake")
    options = {
        "account": env["SNOWFLAKE_ACCOUNT"],
        "database": env.get("SNOWFLAKE_DATABASE") or "WHOOP",
        "schema": "MARTS",
        "warehouse": env.get("SNOWFLAKE_WAREHOUSE", ""),
        "role": env.get("SNOWFLAKE_ROLE", ""),
    }
    secrets = {"username": env["SNOWFLAKE_USER"]}
    private_key = env.get("SNOWFLAKE_PRIVATE_KEY", "")
    if not private_key and env.get("SNOWFLAKE_PRIVATE_KEY_PATH"):
        key_path = Path(env["SNOWFLAKE_PRIVATE_KEY_PATH"])
        if not key_path.is_file():
            raise ConfigError(f"SNOWFLAKE_PRIVATE_KEY_PATH names {key_path}, which does not exist")
        private_key = key_path.read_text(encoding="utf-8")
    if private_key:
        options["authenticator"] = "snowflake_jwt"
        secrets["private_key"] = private_key
        secrets["passphrase"] = env.get("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE", "")
    elif env.get("SNOWFLAKE_PASSWORD"):
        options["authenticator"] = "userpass"
        secrets["password"] = env["SNOWFLAKE_PASSWORD"]
    else:
        raise ConfigError(
            "set SNOWFLAKE_PASSWORD, or SNOWFLAKE_PRIVATE_KEY / SNOWFLAKE_PRIVATE_KEY_PATH, to build the "
            "report from Snowflake"
        )
    connection = {"name": SOURCE, "type": "snowflake", "options": options}
    return connection, {f"EVIDENCE_SOURCE__{SOURCE}__{key}": value for key, value in secrets.items()}


def postgres_connection(env: Mapping[str, str]) -> tuple[dict, dict[str, str]]:
    """The connection file's options from libpq's variables, and the password as Evidence's variable."""
    missing = [name for name in ("PGHOST", "PGUSER", "PGDATABASE") if not env.get(name)]
    if missing:
        raise ConfigError(f"{', '.join(missing)} must be set to build the report from PostgreSQL")
    ssl_mode = env.get("PGSSLMODE") or "prefer"
    options = {
        "host": env["PGHOST"],
        "port": int(env.get("PGPORT") or 5432),
        "database": env["PGDATABASE"],
        "user": env["PGUSER"],
        "ssl": SSL_MODES.get(ssl_mode, {"rejectUnauthorized": True}),  # verify-ca, verify-full
        "schema": "marts",
    }
    # node-postgres reads zoneless timestamps and dates in its process's zone; the warehouse's are UTC.
    extra = {"TZ": "UTC"}
    if env.get("PGPASSWORD"):
        extra[f"EVIDENCE_SOURCE__{SOURCE}__password"] = env["PGPASSWORD"]
    return {"name": SOURCE, "type": "postgres", "options": options}, extra


def write_connection(
    source_dir: Path, warehouse: str, env: Mapping[str, str], duckdb_path: Path | None
) -> dict[str, str]:
    """Write sources/whoop/connection.yaml for `warehouse`; returns the variables Evidence must also get."""
    if warehouse == "duckdb":
        if duckdb_path is None:
            raise ConfigError("WHOOP_DUCKDB_PATH is not set: point it at the pipeline's DuckDB file")
        connection, extra_env = duckdb_connection(source_dir, duckdb_path), {}
    elif warehouse == "snowflake":
        connection, extra_env = snowflake_connection(env)
    elif warehouse == "postgres":
        connection, extra_env = postgres_connection(env)
    else:
        raise ConfigError(f"warehouse must be one of {', '.join(WAREHOUSES)}, not {warehouse!r}")
    # JSON is YAML: no YAML library needed, and nothing in it needs quoting rules.
    (source_dir / "connection.yaml").write_text(json.dumps(connection, indent=2) + "\n", encoding="utf-8")
    return extra_env
