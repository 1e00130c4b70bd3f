"""Airflow DAGs generated from the Meltano project's schedules (Airflow 3).

Every job schedule listed by `meltano schedule list --format=json` becomes one DAG named after the schedule,
with the schedule's cron as its timetable and one task per task of the job, run in order with `meltano run
<task>`. A job task such as "tap-whoop target-duckdb" stays one Airflow task: meltano pipes the tap into the
target and saves the bookmark only once the target has confirmed it. State IDs depend on the
extractor/loader pair and the environment, not on the job, so splitting a job at its task boundaries keeps
incremental state intact.

Meltano's stock generator (files-airflow) passes `schedule_interval`, which Airflow 3 removed; this file is
its Airflow 3 replacement. It is not called `meltano.py` because the DAG folder is on sys.path and that name
would shadow the meltano package.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, BaseOperator
from airflow.sdk.exceptions import AirflowException

# The DAG folder is on sys.path when Airflow parses or runs this file; the insert keeps the helper
# importable for tools that load the file by path.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from meltano_run_log import MeltanoRunLog

PROJECT_ROOT = Path(os.environ.get("MELTANO_PROJECT_ROOT") or Path(__file__).resolve().parents[2])
# `meltano install` links the meltano that installed the project here; Airflow's venv does not contain
# meltano.
_MELTANO_LINK = PROJECT_ROOT / ".meltano" / "run" / "bin"
MELTANO_BIN = os.environ.get("MELTANO_BIN") or (str(_MELTANO_LINK) if _MELTANO_LINK.exists() else "meltano")
SCHEDULE_LIST_TIMEOUT = 120
SCHEDULE_CACHE = PROJECT_ROOT / ".meltano" / "run" / "airflow" / "schedules.json"

# WHOOP rotates the refresh token on every use: two overlapping runs would both redeem the same token, and
# the loser (and possibly the stored token) would be locked out. Hence one active run per DAG, sequential
# tasks and no catch-up (an incremental run fetches everything since the bookmark anyway, so back-filled
# runs add nothing).
MAX_ACTIVE_RUNS = 1
DEFAULT_ARGS = {
    "owner": "meltano",
    "depends_on_past": False,
    # WHOOP and warehouse hiccups usually clear within minutes. Overridable, e.g. 0 for `airflow dags test`,
    # which otherwise waits out the retry delay of a failed task.
    "retries": int(os.environ.get("MELTANO_DAG_RETRIES", "2")),
    "retry_delay": timedelta(minutes=float(os.environ.get("MELTANO_DAG_RETRY_DELAY_MINUTES", "10"))),
    "retry_exponential_backoff": 2.0,
    "execution_timeout": timedelta(hours=1),
}
# Shorter than the 3-hour schedule, so a hung run is failed before it blocks the next one.
DAGRUN_TIMEOUT = timedelta(hours=2, minutes=50)
START_DATE = datetime(2024, 1, 1, tzinfo=UTC)


class MeltanoRunOperator(BaseOperator):
    """Runs `meltano run <blocks>` in the project; a non-zero exit fails the task, naming what broke."""

    ui_color = "#e9d8fd"

    def __init__(self, *, blocks: str, env: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.blocks = blocks
        self.env = env or {}
        self._process: subprocess.Popen[str] | None = None

    def execute(self, context: Any) -> None:
        # JSON logs carry the plugin name and type of every line, and the exit codes of a failed block.
        command = [MELTANO_BIN, "--log-format=json", "run", *shlex.split(self.blocks)]
        self.log.info("Running %s in %s", shlex.join(command), PROJECT_ROOT)
        run_log = MeltanoRunLog(self.blocks)
        self._process = subprocess.Popen(  # noqa: S603 - fixed command, no shell
            command,
            cwd=PROJECT_ROOT,
            env={**os.environ, **self.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="backslashreplace",
            start_new_session=True,
        )
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self.log.info("%s", run_log.feed(line))
        exit_code = self._process.wait()
        if exit_code != 0:
            raise AirflowException(run_log.failure_summary(exit_code))
        self.log.info("`meltano run %s` succeeded", self.blocks)

    def on_kill(self) -> None:
        # Meltano forwards SIGTERM to its plugins, so a killed task does not leave a tap holding the token.
        if self._process is not None and self._process.poll() is None:
            os.killpg(os.getpgid(self._process.pid), signal.SIGTERM)


def _project_fingerprint() -> str:
    """Changes whenever the project's configuration or the selected environment changes."""
    digest = hashlib.sha256(os.environ.get("MELTANO_ENVIRONMENT", "").encode())
    for path in sorted(PROJECT_ROOT.glob("*.yml")) + sorted(PROJECT_ROOT.glob("plugins/**/*.yml")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def load_schedules() -> list[dict[str, Any]]:
    """Meltano's job schedules, cached per project fingerprint (Airflow re-parses this file every 30 s)."""
    fingerprint = _project_fingerprint()
    try:
        cached = json.loads(SCHEDULE_CACHE.read_text())
        if cached["fingerprint"] == fingerprint:
            return cached["schedules"]
    except (OSError, ValueError, KeyError, TypeError):
        pass

    command = [MELTANO_BIN, "--log-level=warning", "schedule", "list", "--format=json"]
    try:
        listed = subprocess.run(  # noqa: S603 - fixed command, no shell
            command,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=SCHEDULE_LIST_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(
            f"Could not run `{shlex.join(command)}` in {PROJECT_ROOT}: {exc}. Set MELTANO_BIN to the meltano "
            "executable or run `meltano install` in the project."
        ) from exc
    if listed.returncode != 0:
        error_tail = "\n".join(listed.stderr.strip().splitlines()[-15:])
        raise RuntimeError(
            f"`{shlex.join(command)}` failed in {PROJECT_ROOT} with exit code {listed.returncode}:\n"
            + error_tail
        )
    try:
        exported = json.loads(listed.stdout)
        schedules = exported["schedules"]["job"]
    except (ValueError, KeyError, TypeError) as exc:
        raise RuntimeError(
            f"Unexpected output from `{shlex.join(command)}`: {listed.stdout[:500]!r}"
        ) from exc

    legacy = [schedule["name"] for schedule in exported["schedules"].get("elt") or []]
    if legacy:
        raise RuntimeError(
            f"Legacy `meltano elt` schedules are not supported, define them with a job: {legacy}"
        )

    # Best effort and atomic: parsers run concurrently, and a read-only project only costs a slower parse.
    try:
        SCHEDULE_CACHE.parent.mkdir(parents=True, exist_ok=True)
        partial = SCHEDULE_CACHE.with_name(f"{SCHEDULE_CACHE.name}.{os.getpid()}")
        partial.write_text(json.dumps({"fingerprint": fingerprint, "schedules": schedules}))
        partial.replace(SCHEDULE_CACHE)
    except OSError:
        pass
    return schedules


def task_id_for(task: str) -> str:
    """'tap-whoop target-duckdb' -> 'tap-whoop_target-duckdb'; 'dbt-duckdb:build' -> 'dbt-duckdb_build'."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", task).strip("_")


def airflow_schedule(schedule: dict[str, Any]) -> str | None:
    """Meltano's cron (presets like @daily already expanded); `@manual` schedules only run when triggered."""
    if schedule.get("cron_interval"):
        return schedule["cron_interval"]
    return "@once" if schedule.get("interval") == "@once" else None


def build_dag(schedule: dict[str, Any]) -> DAG:
    job = schedule["job"]
    blocks = [task if isinstance(task, str) else " ".join(task) for task in job["tasks"]]
    with DAG(
        dag_id=schedule["name"],
        description=f"meltano job {job['name']}: " + " → ".join(blocks),
        schedule=airflow_schedule(schedule),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=MAX_ACTIVE_RUNS,
        dagrun_timeout=DAGRUN_TIMEOUT,
        default_args=DEFAULT_ARGS,
        tags=["meltano", f"job:{job['name']}"],
        doc_md=__doc__,
    ) as dag:
        previous = None
        seen: set[str] = set()
        for index, block in enumerate(blocks):
            task_id = task_id_for(block)
            if task_id in seen:
                task_id = f"{task_id}_{index + 1}"
            seen.add(task_id)
            current = MeltanoRunOperator(task_id=task_id, blocks=block, env=schedule.get("env") or {})
            if previous is not None:
                previous >> current
            previous = current
    return dag


for _schedule in load_schedules():
    globals()[_schedule["name"]] = build_dag(_schedule)
