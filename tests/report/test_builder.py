"""The report builder's decisions, without building: which Node runs Evidence, and what the `whoop`
source says for each warehouse (no secret in the connection file)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from whoop_report import node as node_module
from whoop_report.node import find_node, major
from whoop_report.sources import ConfigError, write_connection


def fake_node(directory: Path, version: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, body in (("node", f"#!/bin/sh\necho {version}\n"), ("npm", "#!/bin/sh\nexit 0\n")):
        path = directory / name
        path.write_text(body)
        path.chmod(0o755)
    return directory


def test_the_machines_node_is_used_when_recent_enough(tmp_path):
    machine = fake_node(tmp_path / "usr" / "bin", "v20.11.1")
    found = find_node(str(machine))
    assert (found.origin, found.version, found.bin_dir) == ("machine", "v20.11.1", machine)


@pytest.mark.parametrize("path", ["old", "none"])
def test_the_wheels_node_runs_where_the_machine_has_none_or_an_old_one(tmp_path, path):
    directory = fake_node(tmp_path / "old", "v16.20.0") if path == "old" else tmp_path / "empty"
    directory.mkdir(exist_ok=True)
    found = find_node(str(directory))
    assert found.origin == "wheel"
    assert found.bin_dir == node_module.wheel_bin_dir()
    assert major(found.version) >= node_module.MIN_NODE_MAJOR
    assert found.npm.exists()
    assert found.env({"PATH": "/usr/bin"})["PATH"].split(os.pathsep)[0] == str(found.bin_dir)


def test_duckdb_source_is_the_warehouse_file_relative_to_the_source_directory(tmp_path):
    source_dir = tmp_path / "reports" / "sources" / "whoop"
    source_dir.mkdir(parents=True)
    warehouse = tmp_path / "data" / "whoop.duckdb"
    warehouse.parent.mkdir()
    warehouse.write_bytes(b"")
    assert write_connection(source_dir, "duckdb", {}, warehouse) == {}
    connection = json.loads((source_dir / "connection.yaml").read_text())
    assert connection["type"] == "duckdb"
    assert (source_dir / connection["options"]["filename"]).resolve() == warehouse.resolve()


def test_a_missing_duckdb_file_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match=r"no DuckDB warehouse at .*run the pipeline first"):
        write_connection(tmp_path, "duckdb", {}, tmp_path / "missing.duckdb")


def test_snowflake_secrets_go_to_evidences_environment_never_to_the_file(tmp_path):
    env = {
        "SNOWFLAKE_ACCOUNT": "xy12345",
        "SNOWFLAKE_USER": "report_reader",
        "SNOWFLAKE_PASSWORD": "s3cret-value",
        "SNOWFLAKE_WAREHOUSE": "REPORTING",
    }
    extra = write_connection(tmp_path, "snowflake", env, None)
    written = (tmp_path / "connection.yaml").read_text()
    connection = json.loads(written)
    assert connection["type"] == "snowflake"
    assert connection["options"] == {
        "account": "xy12345",
        "database": "WHOOP",
        "schema": "MARTS",
        "warehouse": "REPORTING",
        "role": "",
        "authenticator": "userpass",
    }
    assert "s3cret-value" not in written
    assert "report_reader" not in written
    assert extra == {
        "EVIDENCE_SOURCE__whoop__username": "report_reader",
        "EVIDENCE_SOURCE__whoop__password": "s3cret-value",
    }


def test_snowflake_key_pair_from_a_file(tmp_path):
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN ENCRYPTED PRIVATE KEY-----\nabc\n-----END ENCRYPTED PRIVATE KEY-----\n")
    env = {
        "SNOWFLAKE_ACCOUNT": "xy12345",
        "SNOWFLAKE_USER": "report_reader",
        "SNOWFLAKE_PRIVATE_KEY_PATH": str(key),
        "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE": "phrase",
    }
    extra = write_connection(tmp_path, "snowflake", env, None)
    assert (
        json.loads((tmp_path / "connection.yaml").read_text())["options"]["authenticator"] == "snowflake_jwt"
    )
    assert extra["EVIDENCE_SOURCE__whoop__private_key"] == key.read_text()
    assert extra["EVIDENCE_SOURCE__whoop__passphrase"] == "phrase"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "SNOWFLAKE_ACCOUNT and SNOWFLAKE_USER must be set"),
        (
            {"SNOWFLAKE_ACCOUNT": "a", "SNOWFLAKE_USER": "u"},
            "set SNOWFLAKE_PASSWORD, or SNOWFLAKE_PRIVATE_KEY",
        ),
    ],
)
def test_snowflake_without_credentials_is_one_clear_error(tmp_path, env, message):
    with pytest.raises(ConfigError, match=message):
        write_connection(tmp_path, "snowflake", env, None)


def test_postgres_source_from_libpq_variables_password_never_in_the_file(tmp_path):
    env = {
        "PGHOST": "db.example",
        "PGPORT": "6543",
        "PGUSER": "whoop",
        "PGPASSWORD": "hunter2",
        "PGDATABASE": "w",
    }
    extra = write_connection(tmp_path, "postgres", env, None)
    text = (tmp_path / "connection.yaml").read_text()
    assert "hunter2" not in text
    connection = json.loads(text)
    assert connection["type"] == "postgres"
    assert connection["options"] == {
        "host": "db.example",
        "port": 6543,
        "database": "w",
        "user": "whoop",
        "ssl": False,
        "schema": "marts",
    }
    assert extra == {"TZ": "UTC", "EVIDENCE_SOURCE__whoop__password": "hunter2"}
    required = {**env, "PGSSLMODE": "verify-full"}
    write_connection(tmp_path, "postgres", required, None)
    assert json.loads((tmp_path / "connection.yaml").read_text())["options"]["ssl"] == {
        "rejectUnauthorized": True
    }


def test_postgres_without_its_variables_is_one_clear_error(tmp_path):
    with pytest.raises(
        ConfigError, match=r"^PGHOST, PGUSER, PGDATABASE must be set to build the report from PostgreSQL$"
    ):
        write_connection(tmp_path, "postgres", {}, None)
