"""Helpers for the end-to-end tests: run Meltano as a user would, read the sandbox back through its API."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import requests
from tap_whoop.streams.base import WhoopStream
from tap_whoop.streams.endpoints import STREAM_TYPES
from tap_whoop.streams.incremental import WhoopCollectionStream

PROJECT_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
MELTANO = VENV_BIN / "meltano"
FAKESNOW_SUPPORT = PROJECT_ROOT / "tests" / "fakesnow_support"

# Every stream's endpoint, and the collections (incremental streams) among them, as the tap defines them.
PATHS = {stream.name: stream.path for stream in STREAM_TYPES if issubclass(stream, WhoopStream)}
COLLECTIONS = {
    stream.name: stream.path for stream in STREAM_TYPES if issubclass(stream, WhoopCollectionStream)
}
KEYS = {"cycles": ("id",), "sleeps": ("id",), "recoveries": ("cycle_id",), "workouts": ("id",)}
# Staging models rename the API keys (transform/models/staging).
STAGING_KEYS = {
    "cycles": "cycle_id",
    "sleeps": "sleep_id",
    "recoveries": "cycle_id",
    "workouts": "workout_id",
}
RAW_KEYS = {**KEYS, "profile": ("user_id",), "body_measurement": ("user_id",)}
STAGING_MODEL_KEYS = {**STAGING_KEYS, "profile": "user_id", "body_measurement": "user_id"}
# The models cast scores with dbt.type_float(), which is single precision on DuckDB: compare them to float32
# precision (raw is compared exactly).
MODEL_REL_TOL = 1e-6
PIPELINE_TIMEOUT = 600
# What a pipeline's `dbt build` leaves out (dbt reads the variable). The models' unit tests read only their
# own fixtures: tests/transform runs them on DuckDB and on Snowflake, the PostgreSQL backfill on PostgreSQL.
# The data tests read the warehouse: the DuckDB and Snowflake pipelines run them once, on the run after
# deletions (tests/transform runs them after its own changes on both).
WITHOUT_UNIT_TESTS = {"DBT_EXCLUDE_RESOURCE_TYPES": "unit_test"}
WITHOUT_TESTS = {"DBT_EXCLUDE_RESOURCE_TYPES": "unit_test test"}
# dbt's summary of a build that ran the data tests (at least a hundred: the project has more).
DATA_TESTS_RAN = re.compile(r"Finished running .* \d{3} data tests")

# Variables a developer may have exported for their own account or warehouse: never let them leak into a test.
_FOREIGN_PREFIXES = (
    "TAP_WHOOP_",
    "TARGET_DUCKDB_",
    "TARGET_SNOWFLAKE_",
    "TARGET_POSTGRES_",
    "SNOWFLAKE_",
    "DBT_",
    "MELTANO_",
    "PG",  # libpq's own (PGHOST, PGUSER, ...)
)
_FOREIGN_NAMES = ("WHOOP_DUCKDB_PATH", "WHOOP_TOKEN_STORE_URL", "WHOOP_DBT_TARGET")


def isolated_env(**overrides: str) -> dict[str, str]:
    """The test process's environment minus anything that configures the pipeline, plus `overrides`."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN_PREFIXES) and k not in _FOREIGN_NAMES
    }
    env["MELTANO_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    env.update(overrides)
    return env


def run_meltano(args: Iterable[str], env: Mapping[str, str], *, entry: list[str] | None = None) -> str:
    """Run a Meltano command from the project root; fail the test with Meltano's own log tail on error."""
    command = [*(entry or [str(MELTANO)]), *args]
    result = subprocess.run(  # bounded by timeout; output captured for the failure message
        command,
        cwd=PROJECT_ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=PIPELINE_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"`meltano {' '.join(args)}` exited {result.returncode}: {meltano_failure(result.stderr)}"
        )
    return result.stdout + result.stderr


def meltano_failure(stderr: str) -> str:
    """Why a Meltano command failed, cause first, then its log's tail.

    A test failure's summary line shows only the message's first line, and a Meltano traceback (rich, boxed)
    runs to many kilobytes, so a bare tail shows frames and hides the error. The cause is either Meltano's own
    exception (the text after the last box) or the error lines of the plugins it ran.
    """
    lines = stderr.splitlines()
    ends = [i for i, line in enumerate(lines) if line.startswith("╰")]
    causes = []
    if ends:
        causes = [line for line in lines[ends[-1] + 1 :] if line.strip() and "Need help fixing" not in line]
    causes += [line for line in lines if "[error" in line or "Error:" in line or "CRITICAL" in line][:10]
    return " | ".join(dict.fromkeys(causes)) + "\n--- stderr (tail) ---\n" + stderr[-6000:]


def private_sys_dir(dest: Path) -> Path:
    """A Meltano system directory of our own over the project's installed plugins (see overlay.py)."""
    sys.path.insert(0, str(FAKESNOW_SUPPORT))
    from overlay import build_sys_dir

    return build_sys_dir(PROJECT_ROOT / ".meltano", dest, fakesnow=False)


def sandbox_env(sandbox, tmp: Path, *, start_date: str) -> dict[str, str]:
    """TAP_WHOOP_* settings for athlete 0 of `sandbox`, with the token store under `tmp`."""
    creds = sandbox.credentials(0)
    return {
        "TAP_WHOOP_API_URL": creds["api_url"],
        "TAP_WHOOP_TOKEN_URL": creds["token_url"],
        "TAP_WHOOP_AUTH_URL": creds["auth_url"],
        "TAP_WHOOP_CLIENT_ID": creds["client_id"],
        "TAP_WHOOP_CLIENT_SECRET": creds["client_secret"],
        "TAP_WHOOP_REFRESH_TOKEN": creds["refresh_token"],
        "TAP_WHOOP_START_DATE": start_date,
        "TAP_WHOOP_TOKEN_STORE": str(tmp / "tokens.json"),
    }


class SandboxReader:
    """Reads what the sandbox serves through its public HTTP API, as an independent client of its own app."""

    def __init__(self, sandbox) -> None:
        self.sandbox = sandbox
        client_id, client_secret = sandbox.add_client()  # its own app, so it never shares the tap's tokens
        response = requests.post(
            sandbox.token_url,
            data={
                "grant_type": "refresh_token",
                "refresh_token": sandbox.grant_refresh_token(0, client_id=client_id),
                "client_id": client_id,
                "client_secret": client_secret,
                "scope": "offline",
            },
            timeout=30,
        )
        response.raise_for_status()
        self.client_id = client_id
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def get(self, path: str, **params: Any) -> Any:
        response = self.session.get(self.sandbox.api_url + path, params=params, timeout=30)
        response.raise_for_status()
        return response.json()

    def collection(self, stream: str) -> list[dict]:
        records, token = [], None
        while True:
            params = {"limit": 25, "start": "2000-01-01T00:00:00.000Z"}
            if token:
                params["nextToken"] = token
            page = self.get(COLLECTIONS[stream], **params)
            records.extend(page["records"])
            token = page.get("next_token") or page.get("nextToken")
            if not token:
                return records

    def everything(self) -> dict[str, list[dict]]:
        data = {stream: self.collection(stream) for stream in COLLECTIONS}
        data["profile"] = [self.get(PATHS["profile"])]
        body = self.get(PATHS["body_measurement"])
        data["body_measurement"] = [{**body, "user_id": data["profile"][0]["user_id"]}]
        return data


def flatten(
    record: Mapping[str, Any], max_depth: int = 3, prefix: str = "", depth: int = 0
) -> dict[str, Any]:
    """The loaders' flattening: nested objects become `parent__child` columns, up to `max_depth` levels."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}__{key}" if prefix else key
        if isinstance(value, Mapping) and depth < max_depth:
            flat.update(flatten(value, max_depth, name, depth + 1))
        else:
            flat[name] = value
    return flat


def _timestamp(value: Any) -> Any:
    """API date-times are ISO strings; the warehouse returns naive UTC datetimes."""
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == "T":
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        return parsed.astimezone(dt.UTC).replace(tzinfo=None) if parsed.tzinfo else parsed
    if isinstance(value, dt.datetime) and value.tzinfo:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def same_value(api: Any, warehouse: Any, *, rel_tol: float = 1e-9) -> bool:
    api, warehouse = _timestamp(api), _timestamp(warehouse)
    if isinstance(api, bool) or isinstance(warehouse, bool):
        return bool(api) == bool(warehouse) if api is not None and warehouse is not None else api == warehouse
    if isinstance(api, int | float) and isinstance(warehouse, int | float):
        return math.isclose(api, warehouse, rel_tol=rel_tol, abs_tol=1e-9)
    if isinstance(api, dt.datetime) and isinstance(warehouse, dt.datetime):
        return abs((api - warehouse).total_seconds()) < 0.001
    return api == warehouse


def kept_unmodelled(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row's `unmodelled_fields` (JSON text in raw, JSON in staging) as a dict; {} when it holds none."""
    value = row.get("unmodelled_fields")
    if isinstance(value, str):
        value = json.loads(value)
    return dict(value or {})


def served_paths(record: Mapping[str, Any], paths: Iterable[str]) -> dict[str, Any]:
    """The fields at these dotted paths (sandbox.add_fields's) that `record` carries, nested as served: what
    its `unmodelled_fields` should hold."""
    found: dict[str, Any] = {}
    for path in paths:
        *parents, last = path.split(".")
        source: Any = record
        target = found
        for name in parents:
            source = source.get(name) if isinstance(source, Mapping) else None
            target = target.setdefault(name, {})
        if isinstance(source, Mapping) and last in source:
            target[last] = source[last]
    return _pruned(found)


def _pruned(tree: dict[str, Any]) -> dict[str, Any]:
    """`tree` without the objects that ended up empty (a path whose record lacks the field), at any depth."""
    pruned = {}
    for name, value in tree.items():
        if isinstance(value, dict) and value:
            value = _pruned(value)
            if not value:
                continue
        elif value == {}:
            continue
        pruned[name] = value
    return pruned


def _nested(tree: Mapping[str, Any], column: str) -> Any:
    """The value at a flattened column's path (`score__breathing_variability`) in a nested dict, or None."""
    value: Any = tree
    for name in column.split("__"):
        value = value.get(name) if isinstance(value, Mapping) else None
    return value


def diff_records(stream: str, api_records: list[dict], rows: list[dict], keys: tuple[str, ...]) -> list[str]:
    """Every difference between what the API served and the warehouse rows (compared column by column; a
    field the tap does not model, in the row's `unmodelled_fields`, nested as served)."""
    problems = []
    by_key = {tuple(str(row[k]) for k in keys): row for row in rows}
    if len(by_key) != len(rows):
        problems.append(f"{stream}: {len(rows) - len(by_key)} duplicate key(s) in the warehouse")
    api_by_key = {tuple(str(r[k]) for k in keys): flatten(r) for r in api_records}
    missing = api_by_key.keys() - by_key.keys()
    extra = by_key.keys() - api_by_key.keys()
    if missing:
        problems.append(
            f"{stream}: {len(missing)} record(s) served but not loaded, e.g. {sorted(missing)[:3]}"
        )
    if extra:
        problems.append(f"{stream}: {len(extra)} row(s) loaded but not served, e.g. {sorted(extra)[:3]}")
    for key in api_by_key.keys() & by_key.keys():
        row = by_key[key]
        kept = kept_unmodelled(row)
        spurious = flatten(kept).keys() - api_by_key[key].keys()
        if spurious:
            problems.append(f"{stream} {key}: unmodelled_fields holds {sorted(spurious)}, not served")
        for column, value in api_by_key[key].items():
            if column.lower() not in row:
                if not same_value(value, _nested(kept, column)):
                    problems.append(
                        f"{stream} {key}: {column} = {value!r} served, not in a column or unmodelled_fields"
                    )
                continue
            if not same_value(value, row[column.lower()]):
                problems.append(f"{stream} {key}: {column} = {row[column.lower()]!r}, API served {value!r}")
    return problems


def assert_warehouse_matches_sandbox(
    served: dict[str, list[dict]], tables: dict[str, dict[str, list[dict]]]
) -> None:
    """raw, staging and marts (`tables`: rows by table by schema, lower-case names) hold exactly what the
    sandbox `served` (SandboxReader.everything())."""
    raw, staging, marts = tables.get("raw", {}), tables.get("staging", {}), tables.get("marts", {})
    problems: list[str] = []

    # raw: every served field, column by column, upserted on the stream's key.
    for stream, keys in RAW_KEYS.items():
        if stream not in raw:
            problems.append(f"raw.{stream} is missing")
            continue
        problems += diff_records(f"raw.{stream}", served[stream], raw[stream], keys)

    # staging: one row per key, the newest version of each record.
    for stream, key in STAGING_MODEL_KEYS.items():
        rows = staging.get(f"stg_whoop__{stream}")
        if rows is None:
            problems.append(f"staging.stg_whoop__{stream} is missing")
            continue
        api_key = RAW_KEYS[stream][0]
        expected = {str(r[api_key]): r for r in served[stream]}
        got = [str(r[key]) for r in rows]
        if sorted(got) != sorted(expected):
            problems.append(
                f"staging.stg_whoop__{stream}: keys differ from the API ({len(got)} vs {len(expected)})"
            )
        for row in rows:
            record = expected.get(str(row[key]))
            if record and "updated_at" in record and not same_value(record["updated_at"], row["updated_at"]):
                problems.append(f"staging.stg_whoop__{stream} {row[key]}: stale version {row['updated_at']}")

    # marts: one fact per cycle / sleep / workout, carrying the served scores.
    cycles = {r["id"]: r for r in served["cycles"]}
    recoveries = {r["cycle_id"]: r for r in served["recoveries"]}
    per_cycle = {r["cycle_id"]: r for r in marts.get("fct_cycles", [])}
    if sorted(per_cycle) != sorted(cycles) or len(per_cycle) != len(marts.get("fct_cycles", [])):
        problems.append(f"marts.fct_cycles: {len(per_cycle)} cycles, the API served {len(cycles)}")
    for cycle_id, row in per_cycle.items():
        cycle = cycles.get(cycle_id, {})
        if not same_value((cycle.get("score") or {}).get("strain"), row["strain"], rel_tol=MODEL_REL_TOL):
            problems.append(f"fct_cycles {cycle_id}: strain {row['strain']}, API {cycle.get('score')}")
        recovery_score = (recoveries.get(cycle_id, {}).get("score") or {}).get("recovery_score")
        if not same_value(recovery_score, row["recovery_score"], rel_tol=MODEL_REL_TOL):
            problems.append(f"fct_cycles {cycle_id}: recovery {row['recovery_score']}, API {recovery_score}")
    # The daily facts: one row per day from the first to the last, each cycle counted on one of them.
    daily = marts.get("fct_daily_health", [])
    days = {r["date_day"] for r in daily}
    if daily and (len(days) != len(daily) or len(days) != (max(days) - min(days)).days + 1):
        problems.append(f"marts.fct_daily_health: {len(daily)} rows for {len(days)} distinct days")
    if sum(r["cycle_count"] for r in daily) != len(cycles):
        problems.append(f"marts.fct_daily_health counts {sum(r['cycle_count'] for r in daily)} cycles")
    for model, stream, key in (
        ("fct_sleeps", "sleeps", "sleep_id"),
        ("fct_workouts", "workouts", "workout_id"),
    ):
        rows = {str(r[key]): r for r in marts.get(model, [])}
        expected = {str(r["id"]): r for r in served[stream]}
        if sorted(rows) != sorted(expected) or len(rows) != len(marts.get(model, [])):
            problems.append(
                f"marts.{model}: {len(marts.get(model, []))} rows, the API served {len(expected)}"
            )
        for record_id, row in rows.items():
            if record_id in expected and row["score_state"] != expected[record_id]["score_state"]:
                problems.append(f"{model} {record_id}: score_state {row['score_state']}, API differs")
    users = [r["user_id"] for r in marts.get("dim_user", [])]
    if users != [served["profile"][0]["user_id"]]:
        problems.append(
            f"marts.dim_user holds {users}, the API's athlete is {served['profile'][0]['user_id']}"
        )

    assert not problems, "\n".join(problems[:40])


def strip_load_times(rows: list[dict]) -> list[dict]:
    """Rows without the columns that record when a row was loaded, sorted for comparison."""

    def volatile(column: str) -> bool:
        return column.startswith(("_sdc_", "dbt_")) or column.endswith(
            ("loaded_at", "extracted_at", "synced_at")
        )

    stripped = [{k: v for k, v in r.items() if not volatile(k)} for r in rows]
    return sorted(stripped, key=repr)


def load_stamps(tables: Mapping[str, Mapping[str, list[dict]]]) -> list[tuple[str, Any]]:
    """Every time the pipeline wrote, named by its table and column: the tap's extraction and the loader's
    batch in raw, dbt's `loaded_at` in staging and marts."""
    stamped = [
        (f"raw.{table}.{column}", row[column])
        for table, rows in tables["raw"].items()
        for row in rows
        for column in ("_sdc_extracted_at", "_sdc_batched_at")
    ] + [
        (f"{schema}.{table}.loaded_at", row["loaded_at"])
        for schema in ("staging", "marts")
        for table, rows in tables[schema].items()
        for row in rows
        if "loaded_at" in row
    ]
    assert len({name.rsplit(".", 1)[0] for name, _ in stamped}) > 10, "too few stamped tables to tell"
    return stamped


def outside_runs(
    stamped: Iterable[tuple[str, Any]], runs: Iterable[tuple[dt.datetime, dt.datetime]]
) -> list[tuple[str, Any]]:
    """The stamps that fall in no run's UTC window (5 s of slack either side)."""
    slack = dt.timedelta(seconds=5)
    windows = list(runs)
    return [
        (name, value)
        for name, value in stamped
        if not any(began - slack <= value <= ended + slack for began, ended in windows)
    ]
