"""The dbt project on the Snowflake adapter, against a fakesnow server on loopback.

The raw rows are the DuckDB tests' (laid out as target-snowflake writes them): dbt run, an incremental
merge after WHOOP changed data (dbt build: the data and unit tests), and a full refresh that must give the
same marts. dbt runs a copy of transform/ with the test-only fakesnow macros
(tests/fakesnow_support/dbt_project.py); another test proves that transform/ itself sends real Snowflake
dbt-snowflake's own SQL."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import fakesnow
import pytest
import snowflake.connector
from comparing import approx_floats
from fakesnow_support.dbt_project import copy_project

from .pipeline import (
    REPO,
    Dbt,
    DuckdbRun,
    SingerLoads,
    drop_raw_column,
    executable,
    load_raw,
    sampled_at,
    sleep_streams,
)
from .test_dbt_duckdb import WHOOP_STAGING
from .warehouse import FACT_TABLES, live_keys_sql, load_raw_into_snowflake, read_raw

pytestmark = pytest.mark.slow

# Its own database: fakesnow's in-memory catalog is shared by every server in the process.
DATABASE = "WHOOP_DBT_TEST"
MART_KEYS = {
    "dim_date": ("date_day",),
    "dim_user": ("user_id",),
    "fct_cycles": ("cycle_id",),
    "fct_daily_health": ("user_id", "date_day"),
    "fct_sleeps": ("sleep_id",),
    "fct_workouts": ("workout_id",),
    "fct_sleep_vitals": ("sleep_id",),
}


@pytest.fixture(scope="module")
def fakesnow_server():
    with fakesnow.server() as connect_kwargs:
        yield {**connect_kwargs, "network_timeout": 60}


@pytest.fixture(scope="module")
def connection(fakesnow_server):
    con = snowflake.connector.connect(**fakesnow_server)
    yield con
    # fakesnow cannot drop a database; emptying it frees the in-memory tables.
    for schema in ("raw", "staging", "marts"):
        con.cursor().execute(f"drop schema if exists {DATABASE}.{schema} cascade")
    con.close()


def snowflake_dbt(workdir: Path, server: dict, project_dir: Path) -> Dbt:
    env = {
        "DBT_TARGET": "snowflake",
        "SNOWFLAKE_ACCOUNT": server["account"],
        "SNOWFLAKE_USER": server["user"],
        "SNOWFLAKE_PASSWORD": server["password"],
        "SNOWFLAKE_DATABASE": DATABASE,
        "SNOWFLAKE_HOST": server["host"],
        "SNOWFLAKE_PORT": str(server["port"]),
        "SNOWFLAKE_PROTOCOL": server["protocol"],
    }
    dbt = executable("WHOOP_DBT_SNOWFLAKE", REPO / ".meltano/utilities/dbt-snowflake/venv/bin/dbt")
    return Dbt(dbt, workdir, env, project_dir=project_dir)


def read_marts(con) -> dict[str, list[tuple]]:
    cursor = con.cursor()
    return {
        table: [
            tuple(row)
            for row in cursor.execute(f"select * from {DATABASE}.marts.{table} order by {', '.join(key)}")
        ]
        for table, key in MART_KEYS.items()
    }


@dataclass
class SnowflakeRun:
    dbt: Dbt
    after_first: dict[str, list[tuple]]
    incremental: dict[str, list[tuple]]
    full_refresh: dict[str, list[tuple]]
    incremental_results: dict


@pytest.fixture(scope="module")
def snowflake_run(singer_loads: SingerLoads, fakesnow_server, connection, tmp_path_factory) -> SnowflakeRun:
    workdir = tmp_path_factory.mktemp("dbt-fakesnow")
    raw_path = workdir / "whoop.duckdb"
    dbt = snowflake_dbt(workdir, fakesnow_server, copy_project(workdir / "transform"))

    load_raw(raw_path, singer_loads.first)
    drop_raw_column(raw_path, "body_measurement", "unmodelled_fields")  # as on DuckDB (conftest.py)
    load_raw_into_snowflake(connection.cursor(), read_raw(raw_path), database=DATABASE)
    # The data and unit tests run once here, on the incremental build, where they can fail for Snowflake's
    # sake (each is a query fakesnow translates, the dearest part of this module).
    dbt("run")
    after_first = read_marts(connection)

    load_raw(raw_path, singer_loads.second)
    load_raw_into_snowflake(connection.cursor(), read_raw(raw_path), database=DATABASE)
    dbt("build", "--vars", "{whoop_reprocess_days: 0}")
    incremental_results = dbt.run_results()
    incremental = read_marts(connection)

    dbt("run", "--full-refresh")
    return SnowflakeRun(dbt, after_first, incremental, read_marts(connection), incremental_results)


def test_incremental_merge_equals_full_refresh(snowflake_run: SnowflakeRun):
    for table in MART_KEYS:
        assert snowflake_run.full_refresh[table], table
        assert snowflake_run.incremental[table] == approx_floats(snowflake_run.full_refresh[table]), table


def test_incremental_merge_applied_the_changes(snowflake_run: SnowflakeRun, connection):
    statuses = {r["unique_id"].split(".")[-1]: r for r in snowflake_run.incremental_results["results"]}
    for table in FACT_TABLES:
        assert statuses[table]["status"] == "success"
        assert "max(loaded_at)" in statuses[table]["compiled_code"]
        assert set(snowflake_run.incremental[table]) - set(snowflake_run.after_first[table]), table
    cursor = connection.cursor()
    for raw_table, key, mart in [("cycles", "id", "fct_cycles"), ("workouts", "id", "fct_workouts")]:
        # Raw keeps what WHOOP deleted (as last served); the facts hold the rest.
        (live_keys,) = cursor.execute(live_keys_sql(f"{DATABASE}.raw", raw_table, raw_table, key)).fetchone()
        assert live_keys == len(snowflake_run.incremental[mart])


def test_deleted_records_left_the_facts_on_the_incremental_merge(
    snowflake_run: SnowflakeRun, singer_loads, connection
):
    """On Snowflake too, the incremental run alone took out what WHOOP deleted, kept what it served again."""
    deleted, restored = singer_loads.changes["deleted"], singer_loads.changes["restored"]
    cursor = connection.cursor()

    def ids(sql: str) -> set[str]:
        return {str(row[0]) for row in cursor.execute(sql).fetchall()}

    workouts = ids(f"select workout_id from {DATABASE}.marts.fct_workouts")
    assert deleted["workout"] not in workouts
    assert restored in workouts
    assert deleted["sleep"] not in ids(f"select sleep_id from {DATABASE}.marts.fct_sleeps")
    assert str(deleted["cycle"]) not in ids(f"select cycle_id from {DATABASE}.marts.fct_cycles")
    assert str(deleted["cycle"]) not in ids(f"select cycle_id from {DATABASE}.marts.fct_daily_health")
    assert deleted["sleep"] not in ids(f"select main_sleep_id from {DATABASE}.marts.fct_daily_health")
    assert deleted["sleep"] not in ids(f"select sleep_id from {DATABASE}.staging.stg_whoop__recoveries")
    # The deleted sleep's samples went with it; the edited sleep's samples are its newest stream's alone.
    assert deleted["sleep"] not in ids(f"select sleep_id from {DATABASE}.staging.stg_whoop__sleep_signals")
    assert deleted["sleep"] not in ids(f"select sleep_id from {DATABASE}.marts.fct_sleep_vitals")
    edited = singer_loads.changes["edited_sleep"]
    newest = sleep_streams(singer_loads.second, edited)[-1]
    staged = cursor.execute(
        f"select sampled_at from {DATABASE}.staging.stg_whoop__sleep_signals"
        f" where sleep_id = '{edited}' order by sampled_at"
    ).fetchall()
    assert [row[0].replace(tzinfo=None) for row in staged] == [sampled_at(s) for s in newest]


def comparable(value):
    """A value as both adapters' clients can agree on it."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float | decimal.Decimal):
        return round(float(value), 6)
    if isinstance(value, dt.datetime):
        # fakesnow's server hands NULL timestamps back as the epoch (a known fakesnow bug).
        return None if value.replace(tzinfo=None) == dt.datetime(1970, 1, 1) else value.replace(tzinfo=None)
    return value


def keyed_rows(description, rows, key: tuple[str, ...]) -> dict:
    """Rows by key without loaded_at: each adapter's run loaded raw at its own time."""
    names = [column[0].lower() for column in description]
    keyed = {}
    for row in rows:
        values = dict(zip(names, row, strict=True))
        keyed[tuple(comparable(values[k]) for k in key)] = {
            n: comparable(v) for n, v in values.items() if n != "loaded_at"
        }
    return keyed


def test_snowflake_and_duckdb_build_the_same_marts(
    snowflake_run: SnowflakeRun, duckdb_run: DuckdbRun, connection
):
    """Both fixtures end with a full refresh over the same Singer loads: the portable SQL must agree."""
    cursor = connection.cursor()
    with duckdb.connect(str(duckdb_run.path), read_only=True) as con:
        for table, key in MART_KEYS.items():
            on_duckdb = con.execute(f"select * from marts.{table}")
            expected = keyed_rows(on_duckdb.description, on_duckdb.fetchall(), key)
            on_snowflake = cursor.execute(f"select * from {DATABASE}.marts.{table}")
            actual = keyed_rows(on_snowflake.description, on_snowflake.fetchall(), key)
            assert expected, table
            assert actual.keys() == expected.keys(), table
            differences = [
                (key, column, value, actual[key][column])
                for key, row in expected.items()
                for column, value in row.items()
                if actual[key][column] != value
            ]
            assert not differences, f"{table}: (key, column, duckdb, snowflake) {differences[:10]}"


GATE_PROBE = """
{%- set relation = api.Relation.create(database=target.database, schema='MARTS', identifier='probe') -%}
{%- set columns = [api.Column.create('ID', 'number'), api.Column.create('VALUE', 'varchar')] -%}
{%- set body = 'select 1 as id' -%}
-- {{ tojson({
    'project': {
        'temporary_table': snowflake__create_table_temporary_sql(relation, body),
        'temporary_view': snowflake__create_view_as_with_temp_flag(relation, body, True),
        'merge': snowflake__get_merge_sql(relation, relation, 'ID', columns, none),
        'dml': snowflake_dml_explicit_transaction('delete from probe'),
    },
    'dbt_snowflake': {
        'temporary_table': dbt.snowflake__create_table_temporary_sql(relation, body),
        'temporary_view': dbt.snowflake__create_view_as_with_temp_flag(relation, body, True),
        'merge': dbt.snowflake__get_merge_sql(relation, relation, 'ID', columns, none),
        'dml': dbt.snowflake_dml_explicit_transaction('delete from probe'),
    },
}) }}
select 1 as id
"""


def render_gate_probe(workdir: Path, server: dict, *, fakesnow: bool) -> dict:
    """Compile a probe model that renders each macro fakesnow overrides next to dbt-snowflake's own."""
    project = copy_project(workdir / ("fakesnow" if fakesnow else "snowflake"), fakesnow=fakesnow)
    (project / "models" / "zz_fakesnow_gate_probe.sql").write_text(GATE_PROBE)
    dbt = snowflake_dbt(project, server, project)
    dbt("compile", "--select", "zz_fakesnow_gate_probe")
    compiled = (project / "target/compiled/whoop/models/zz_fakesnow_gate_probe.sql").read_text()
    return json.loads(compiled.split("-- ", 1)[1].split("\n", 1)[0])


def test_real_snowflake_gets_dbt_snowflakes_own_sql(fakesnow_server, tmp_path):
    """transform/ overrides none of dbt-snowflake's macros; only the tests' copy works around fakesnow."""
    standard = render_gate_probe(tmp_path, fakesnow_server, fakesnow=False)
    assert standard["project"] == standard["dbt_snowflake"]
    assert "temporary" in standard["project"]["temporary_table"]
    assert "temporary" in standard["project"]["temporary_view"]
    assert "begin;" in standard["project"]["merge"]
    assert 'values\n        ("ID", "VALUE")' in standard["project"]["merge"]

    patched = render_gate_probe(tmp_path, fakesnow_server, fakesnow=True)["project"]
    assert "temporary" not in patched["temporary_table"]
    assert "transient" in patched["temporary_table"]
    assert "temporary" not in patched["temporary_view"]
    assert "begin;" not in patched["merge"]
    assert 'values\n        (DBT_INTERNAL_SOURCE."ID", DBT_INTERNAL_SOURCE."VALUE")' in patched["merge"]
    assert patched["dml"].strip() == "delete from probe"


def test_report_source_queries_run_on_snowflake(
    snowflake_run: SnowflakeRun, duckdb_run: DuckdbRun, connection
):
    """The report's source queries (reports/sources/whoop/*.sql) serve both warehouses: on Snowflake they
    return what they return on DuckDB. Evidence's Snowflake connector cannot be pointed at the stand-in, so
    the queries are checked here, through the Snowflake connector."""
    queries = sorted((REPO / "reports" / "sources" / "whoop").glob("*.sql"))
    assert queries
    cursor = connection.cursor()
    cursor.execute(f"use database {DATABASE}")

    def rows(result) -> tuple[list[tuple], list[str]]:
        names = [column[0].lower() for column in result.description]
        return sorted((tuple(comparable(v) for v in row) for row in result.fetchall()), key=repr), names

    with duckdb.connect(str(duckdb_run.path), read_only=True) as con:
        for query in queries:
            sql = query.read_text(encoding="utf-8")
            expected, expected_names = rows(con.execute(sql))
            actual, actual_names = rows(cursor.execute(sql))
            assert expected, query.name
            assert actual_names == expected_names, query.name
            assert actual == expected, query.name


def test_unmodelled_fields_are_variant_holding_what_duckdb_holds(
    snowflake_run: SnowflakeRun, duckdb_run: DuckdbRun, connection
):
    """On Snowflake the same macro gives VARIANT (parse_json of the loader's text), with the same fields; a
    raw table still without the column (body measurement here, as on DuckDB) gives NULL."""
    cursor = connection.cursor()
    types = {
        name.lower(): kind
        for name, kind in cursor.execute(
            f"select table_name, data_type from {DATABASE}.information_schema.columns"
            " where lower(table_schema) = 'staging' and lower(column_name) = 'unmodelled_fields'"
            " and lower(table_name) like 'stg_whoop__%'"
        ).fetchall()
    }
    assert types == dict.fromkeys(WHOOP_STAGING, "VARIANT")
    (body,) = cursor.execute(
        f"select count(unmodelled_fields) from {DATABASE}.staging.stg_whoop__body_measurement"
    ).fetchone()
    assert body == 0

    def parsed(rows) -> dict:
        return {key: json.loads(value) if value else None for key, value in rows}

    sleeps = "select sleep_id, unmodelled_fields from {}staging.stg_whoop__sleeps"
    on_snowflake = parsed(cursor.execute(sleeps.format(f"{DATABASE}.")).fetchall())
    with duckdb.connect(str(duckdb_run.path), read_only=True) as con:
        on_duckdb = parsed(con.execute(sleeps.format("")).fetchall())
    assert any(on_duckdb.values())
    assert on_snowflake == on_duckdb
