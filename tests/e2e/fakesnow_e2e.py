"""The production path as the end-to-end tests run it: queries of fakesnow, Meltano on fakesnow, and Meltano's
prod environment pointed at a fakesnow server (conftest.py starts it): the README's production settings.

Test-only pieces, kept out of meltano.yml: tests/fakesnow_support points the Snowflake connector (state
backend, loader, the tap's token and event stores) at the fakesnow server and loads through INSERTs (fakesnow
has no internal stages); dbt-snowflake runs a copy of transform/ with the test-only fakesnow macros.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import zones
from e2e_support import FAKESNOW_SUPPORT, PROJECT_ROOT, isolated_env, run_meltano

sys.path.insert(0, str(FAKESNOW_SUPPORT))
from dbt_project import copy_project
from overlay import build_sys_dir  # lives beside the wrappers it installs

MELTANO_ON_FAKESNOW = [sys.executable, str(FAKESNOW_SUPPORT / "run_meltano.py")]
# fakesnow's server returns SQL NULL timestamps as the epoch (a known fakesnow gap, see the toolchain notes).
FAKESNOW_NULL_TIMESTAMP = dt.datetime(1970, 1, 1)  # the connector returns naive timestamps


def query(connection, sql: str) -> list[dict]:
    """Rows as dicts with lower-case column names, fakesnow's epoch NULLs back to None."""
    with connection.cursor() as cursor:
        cursor.execute(sql)
        columns = [d[0].lower() for d in cursor.description]
        return [
            {c: (None if v == FAKESNOW_NULL_TIMESTAMP else v) for c, v in zip(columns, row, strict=True)}
            for row in cursor.fetchall()
        ]


def meltano(args: list[str], env: dict[str, str]) -> str:
    return run_meltano(args, env, entry=MELTANO_ON_FAKESNOW)


def prod_env(server: dict, whoop: dict[str, str], tmp: Path) -> dict[str, str]:
    """Meltano's prod environment on `server`, with the sandbox's tap settings `whoop` (from sandbox_env)."""
    whoop = dict(whoop)
    del whoop["TAP_WHOOP_TOKEN_STORE"]  # production reads it from WHOOP_TOKEN_STORE_URL, as below
    return isolated_env(
        **whoop,
        TZ=zones.BEHIND,
        WHOOP_TOKEN_STORE_URL=(
            f"snowflake://{server['user']}:{server['password']}@{server['account']}/WHOOP/RAW?warehouse=COMPUTE_WH"
        ),
        MELTANO_ENVIRONMENT="prod",
        MELTANO_SYS_DIR_ROOT=str(build_sys_dir(PROJECT_ROOT / ".meltano", tmp / "meltano-sys")),
        SNOWFLAKE_ACCOUNT=server["account"],
        SNOWFLAKE_USER=server["user"],
        SNOWFLAKE_PASSWORD=server["password"],
        SNOWFLAKE_WAREHOUSE="COMPUTE_WH",
        SNOWFLAKE_HOST=server["host"],
        SNOWFLAKE_PORT=str(server["port"]),
        SNOWFLAKE_PROTOCOL="http",
        # As the README sets them for production (Meltano reads its state backend from the environment).
        MELTANO_STATE_BACKEND_URI=f"snowflake://{server['user']}@{server['account']}/WHOOP/RAW?warehouse=COMPUTE_WH",
        MELTANO_STATE_BACKEND_SNOWFLAKE_PASSWORD=server["password"],
        # Meltano's own variable for the utility's project_dir setting.
        DBT_SNOWFLAKE_PROJECT_DIR=str(copy_project(tmp / "transform")),
    )
