"""Pipeline plumbing for the dbt tests: the real tap against the WHOOP sandbox, target-duckdb, and the dbt
executables Meltano installs (each overridable by an environment variable), all run a day ahead of UTC
(tests/zones.py)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest
import yaml
import zones
from whoop_sandbox import Sandbox

from .warehouse import MART_TABLES

REPO = Path(__file__).resolve().parents[2]
# The machine's zone for every process these tests start.
ZONE = {"TZ": zones.AHEAD}
TRANSFORM = REPO / "transform"
ATHLETES = 2
DBT_TIMEOUT = 300


def executable(env_var: str, default: Path) -> Path:
    """A tool from the environment variable, else where `meltano install` puts it; missing is a failure."""
    path = Path(os.environ.get(env_var) or default)
    if not path.exists():
        pytest.fail(f"{path} does not exist: run `meltano install` or point {env_var} at the executable")
    return path


def tap_executable() -> Path:
    return executable("WHOOP_TAP", Path(sys.executable).parent / "tap-whoop")


def target_duckdb_executable() -> Path:
    return executable("WHOOP_TARGET_DUCKDB", REPO / ".meltano/loaders/target-duckdb/venv/bin/target-duckdb")


def plugin_env(plugin_type: str, name: str) -> dict[str, str]:
    """The `env:` meltano.yml gives a plugin (target-duckdb's TZ=UTC), for tests that bypass Meltano."""
    project = yaml.safe_load((REPO / "meltano.yml").read_text())
    plugin = next(p for p in project["plugins"][plugin_type] if p["name"] == name)
    return {key: str(value) for key, value in (plugin.get("env") or {}).items()}


@dataclass(frozen=True)
class SingerLoads:
    """Singer messages of the tap runs loaded before the first dbt build (the first sync of each athlete, then
    one incremental run), then of one incremental run per athlete after changes; `changes` names the records
    deleted and restored at WHOOP."""

    first: tuple[Path, ...]
    second: tuple[Path, ...]
    changes: dict = field(default_factory=dict)


def extract(sandbox: Sandbox, athlete: int, workdir: Path, name: str, state: dict | None) -> Path:
    config = workdir / f"config-{athlete}.json"
    if not config.exists():
        config.write_text(
            json.dumps(
                {
                    "client_id": sandbox.client_id,
                    "client_secret": sandbox.client_secret,
                    "refresh_token": sandbox.grant_refresh_token(athlete=athlete),
                    "api_url": sandbox.api_url,
                    "token_url": sandbox.token_url,
                    "token_store": str(workdir / f"tokens-{athlete}.json"),
                    "start_date": "2020-01-01T00:00:00Z",
                }
            )
        )
    args = [str(tap_executable()), "--config", str(config)]
    if state is not None:
        state_file = workdir / f"state-{athlete}.json"
        state_file.write_text(json.dumps(state))
        args += ["--state", str(state_file)]
    output = workdir / f"{name}-{athlete}.jsonl"
    with output.open("w") as out:
        subprocess.run(
            args, stdout=out, stderr=subprocess.PIPE, check=True, timeout=120, env={**os.environ, **ZONE}
        )
    return output


def sleep_streams(message_files: tuple[Path, ...], sleep_id: str) -> list[list[dict]]:
    """Each version of a sleep's signal stream the tap wrote to these files, in load order: its records'
    samples joined in part order (a stream longer than the tap's record size comes in parts)."""
    versions: dict[str, dict[int, list[dict]]] = {}
    for path in message_files:
        for message in map(json.loads, path.read_text().splitlines()):
            record = message.get("record") or {}
            if message.get("stream") == "sleep_signals" and record.get("sleep_id") == sleep_id:
                versions.setdefault(record["sleep_updated_at"], {})[record["part"]] = record["stream"]
    return [[s for _, part in sorted(parts.items()) for s in part] for parts in versions.values()]


def sampled_at(sample: dict) -> dt.datetime:
    """A sample's time as staging stores it: UTC, naive."""
    return dt.datetime.fromisoformat(sample["timestamp"]).astimezone(dt.UTC).replace(tzinfo=None)


def last_state(messages: Path) -> dict:
    states = [m["value"] for m in map(json.loads, messages.read_text().splitlines()) if m["type"] == "STATE"]
    return states[-1]


def load_raw(duckdb_path: Path, message_files: tuple[Path, ...]) -> None:
    """Load Singer messages into `raw` with target-duckdb, configured as meltano.yml configures it."""
    config = duckdb_path.with_suffix(".target.json")
    config.write_text(
        json.dumps(
            {
                "path": str(duckdb_path),
                "default_target_schema": "raw",
                "data_flattening_max_level": 3,
                "add_metadata_columns": True,
                "primary_key_required": True,
            }
        )
    )
    for messages in message_files:
        with messages.open() as stdin:
            subprocess.run(
                [str(target_duckdb_executable()), "--config", str(config)],
                stdin=stdin,
                capture_output=True,
                check=True,
                timeout=120,
                env={**os.environ, **ZONE, **plugin_env("loaders", "target-duckdb")},
            )


def drop_raw_column(duckdb_path: Path, table: str, column: str) -> None:
    """A raw table as a deployment's stays until the tap writes to it again (profile and body are re-read
    weekly): without a column a newer tap emits. Done by the loader's own DuckDB (the root venv's is newer
    and would rewrite the file in its format)."""
    python = target_duckdb_executable().parent / "python"
    script = "import duckdb, sys; duckdb.connect(sys.argv[1]).execute(sys.argv[2]).close()"
    # Copied rather than altered: DuckDB refuses to drop a column while an index depends on a later one.
    sql = f"""
        create table raw.{table}_copy as select * exclude ({column}) from raw.{table};
        drop table raw.{table};
        alter table raw.{table}_copy rename to {table};
    """
    subprocess.run([str(python), "-c", script, str(duckdb_path), sql], check=True, timeout=60)


class Dbt:
    """Runs one dbt executable on transform/ with its own target and log directories."""

    def __init__(
        self, executable_path: Path, workdir: Path, env: dict[str, str], project_dir: Path = TRANSFORM
    ):
        self.executable = executable_path
        self.workdir = workdir
        self.project_dir = project_dir
        inherited = {
            k: v for k, v in os.environ.items() if not k.startswith(("SNOWFLAKE_", "DBT_", "WHOOP_"))
        }
        self.env = {**inherited, **ZONE, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", **env}

    def __call__(self, *args: str, expect_success: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [
                str(self.executable),
                *args,
                "--project-dir",
                str(self.project_dir),
                "--profiles-dir",
                str(self.project_dir),
                "--target-path",
                str(self.workdir / "target"),
                "--log-path",
                str(self.workdir / "logs"),
            ],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=DBT_TIMEOUT,
        )
        if expect_success and result.returncode != 0:
            output = f"{result.stdout[-6000:]}\n{result.stderr}"
            pytest.fail(f"dbt {' '.join(args)} failed ({result.returncode}):\n{output}")
        return result

    def run_results(self) -> dict:
        return json.loads((self.workdir / "target" / "run_results.json").read_text())


def read_marts(path: Path) -> dict[str, list[tuple]]:
    # The root venv's DuckDB is newer than the pipeline's: read only, never write the file.
    with duckdb.connect(str(path), read_only=True) as con:
        return {
            table: con.execute(f"select * from marts.{table} order by all").fetchall()
            for table in MART_TABLES
        }


@dataclass
class DuckdbRun:
    dbt: Dbt
    path: Path
    after_first: dict[str, list[tuple]]
    incremental: dict[str, list[tuple]]
    full_refresh: dict[str, list[tuple]]
    incremental_results: dict
