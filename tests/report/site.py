"""The report as the browser tests see it: a warehouse made by the real pipeline (the WHOOP sandbox at a
fixed `now`, tap-whoop, target-duckdb, dbt build), the report built from it by `whoop-report build` in a
private copy of reports/ (node_modules hard-linked, so nothing of the developer's reports/build is
touched), and a local static server for the result."""

from __future__ import annotations

import datetime as dt
import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
from transform.pipeline import REPO, Dbt, executable, extract, load_raw
from whoop_report.build import Report, install
from whoop_report.node import find_node
from whoop_sandbox import Sandbox

REPORTS = REPO / "reports"
# A fixed clock: the same history, the same last day and the same report whatever the date of the run.
NOW = dt.datetime(2026, 3, 9, 15, 30, tzinfo=dt.UTC)
ATHLETES = 2
HISTORY_DAYS = 45
# Days before NOW of the cycle removed from athlete 0, so the warehouse has a day without a cycle.
GAP_DAYS_AGO = 12
BUILD_TIMEOUT = 1800


@dataclass(frozen=True)
class Site:
    warehouse: Path
    build_dir: Path
    build_seconds: float


def make_gap(sandbox: Sandbox, athlete: int, days_ago: float) -> int:
    """Remove a cycle with its sleeps (and their recoveries) and workouts: a day the strap saw nothing."""
    cycle = sandbox.record_near("cycle", athlete=athlete, days_ago=days_ago)
    records = sandbox.athletes[athlete].records
    start, end = cycle["start"], cycle["end"]
    for sleep in [r for r in records["sleep"].items if r.body["cycle_id"] == cycle["id"]]:
        sandbox.delete_record("sleep", sleep.key)
    for workout in [r for r in records["workout"].items if start <= r.body["start"] < end]:
        sandbox.delete_record("workout", workout.key)
    sandbox.delete_record("cycle", cycle["id"])
    return cycle["id"]


def build_warehouse(workdir: Path) -> Path:
    path = workdir / "whoop.duckdb"
    with Sandbox(seed=23, days=HISTORY_DAYS, athletes=ATHLETES, rate_limits=[], now=NOW) as sandbox:
        make_gap(sandbox, athlete=0, days_ago=GAP_DAYS_AGO)
        loads = tuple(extract(sandbox, a, workdir, "report", None) for a in range(ATHLETES))
    load_raw(path, loads)
    dbt = Dbt(
        executable("WHOOP_DBT_DUCKDB", REPO / ".meltano/utilities/dbt-duckdb/venv/bin/dbt"),
        workdir,
        {"WHOOP_DUCKDB_PATH": str(path), "DBT_TARGET": "duckdb"},
    )
    dbt("build", "--exclude-resource-type", "unit_test")  # they run in tests/transform
    return path


def private_project(workdir: Path) -> Path:
    """reports/ without its build output, the npm packages of reports/package-lock.json hard-linked in."""
    node = find_node()
    install(Report(REPORTS), node, node.env(dict(os.environ)))
    project = workdir / "reports"
    shutil.copytree(
        REPORTS,
        project,
        ignore=shutil.ignore_patterns(
            "node_modules", "build", ".evidence", ".svelte-kit", "builder", "connection.yaml"
        ),
    )
    subprocess.run(["cp", "-al", str(REPORTS / "node_modules"), str(project / "node_modules")], check=True)
    return project


def build_site(workdir: Path) -> Site:
    warehouse = build_warehouse(workdir)
    project = private_project(workdir)
    started = time.monotonic()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "whoop_report.cli",
            "build",
            "--project-dir",
            str(project),
            "--duckdb-path",
            str(warehouse),
            "--warehouse",
            "duckdb",
        ],
        check=True,
        timeout=BUILD_TIMEOUT,
    )
    return Site(warehouse, project / "build", time.monotonic() - started)


class StaticServer:
    """The built site on a loopback port, as any static web server would serve it."""

    def __init__(self, root: Path):
        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Quiet, directory=root)
        )
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> StaticServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def marts(warehouse: Path, sql: str, params: list | None = None) -> list[dict]:
    # The root venv's DuckDB is newer than the pipeline's: read only, never write the file.
    with duckdb.connect(str(warehouse), read_only=True) as con:
        cursor = con.execute(sql, params or [])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
