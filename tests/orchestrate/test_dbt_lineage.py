"""How the DAGs name a warehouse's tables for assets and lineage (dbt_lineage.py), per adapter.

dbt_lineage imports Cosmos, so it runs in Airflow's venv; the DuckDB and Snowflake names are also checked
on the parsed DAGs (test_dag_generator.py) and against OpenLineage's own events (test_airflow_runs.py).
"""

import json
import subprocess
import textwrap

import pytest
from airflow_support import DAGS_FOLDER

PROFILES = """\
whoop:
  outputs:
    duckdb:
      type: duckdb
      path: "{{ env_var('WHOOP_DUCKDB_PATH', env_var('MELTANO_PROJECT_ROOT', '..') ~ '/data/whoop.duckdb') }}"
    snowflake:
      type: snowflake
      account: "{{ env_var('SNOWFLAKE_ACCOUNT') }}"
      port: "{{ env_var('SNOWFLAKE_PORT', '443') | as_number }}"
    postgres:
      type: postgres
      host: "{{ env_var('PGHOST', '') }}"
      port: "{{ env_var('PGPORT', '5432') | as_number }}"
"""

NAMES = textwrap.dedent("""\
    import json, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    from dbt_lineage import Table, render_profile, warehouse_namespace
    env = json.loads(sys.argv[4])
    namespace = warehouse_namespace(render_profile(Path(sys.argv[2]), "whoop", sys.argv[3], env))
    print(json.dumps([namespace, namespace and Table(namespace, "whoop.raw.cycles").uri]))
    """)


@pytest.mark.parametrize(
    ("target", "env", "expected"),
    [
        (
            "duckdb",
            {"MELTANO_PROJECT_ROOT": "/srv/whoop"},
            [
                "duckdb:///srv/whoop/data/whoop.duckdb",
                "duckdb:///srv/whoop/data/whoop.duckdb/whoop/raw/cycles",
            ],
        ),
        (
            "duckdb",
            {"WHOOP_DUCKDB_PATH": "/data/w.duckdb"},
            ["duckdb:///data/w.duckdb", "duckdb:///data/w.duckdb/whoop/raw/cycles"],
        ),
        # OpenLineage's form of the account: a legacy locator gains its region's cloud.
        (
            "snowflake",
            {"SNOWFLAKE_ACCOUNT": "xy12345.eu-west-1"},
            ["snowflake://xy12345.eu-west-1.aws", "snowflake://xy12345.eu-west-1.aws/whoop/raw/cycles"],
        ),
        (
            "snowflake",
            {"SNOWFLAKE_ACCOUNT": "myorg-myaccount"},
            ["snowflake://myorg-myaccount", "snowflake://myorg-myaccount/whoop/raw/cycles"],
        ),
        (
            "postgres",
            {"PGHOST": "db.example"},
            ["postgres://db.example:5432", "postgres://db.example:5432/whoop/raw/cycles"],
        ),
        # A profile that does not say where its warehouse is names nothing, rather than a wrong table.
        ("snowflake", {}, [None, None]),
        ("postgres", {}, [None, None]),
    ],
)
def test_tables_are_named_by_their_warehouse(airflow_venv, tmp_path, target, env, expected):
    profiles = tmp_path / "profiles.yml"
    profiles.write_text(PROFILES)

    named = subprocess.run(
        [airflow_venv / "bin" / "python", "-c", NAMES, DAGS_FOLDER, profiles, target, json.dumps(env)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert named.returncode == 0, named.stderr[-3000:]
    assert json.loads(named.stdout.strip().splitlines()[-1]) == expected
