"""Airflow DAGs generated from the Meltano project's schedules (Airflow 3).

Every job schedule listed by `meltano schedule list --format=json` becomes one DAG named after the schedule
(read from the project description `make dbt-manifests` writes, so parsing never starts Meltano),
with the schedule's cron as its timetable. Each task of the job becomes, in order:
- for its extract-load part (`tap-whoop target-duckdb`), one task running `meltano run <blocks>`: meltano
  pipes the tap into the target and saves the bookmark only once the target has confirmed it;
- for a dbt build or run (`dbt-duckdb:build`), a Cosmos task group with one task per dbt model
  (meltano_dbt.py), run with the same dbt, target and variables as `meltano invoke dbt-duckdb build`.
State IDs depend on the extractor/loader pair and the environment, not on the job, so splitting a job at
its plugin boundaries keeps incremental state intact, and a failed model is retried without extracting.

The extract-load task declares the raw tables it writes (the dbt sources) and each dbt model's task the
tables it built (Cosmos), as Airflow assets and in OpenLineage's events; the report (`evidence:build`)
gets a DAG of its own, `whoop-report`, scheduled on the marts' assets rather than on a clock
(dbt_lineage.py names the tables).

MELTANO_DAG_SCHEDULES (comma-separated) limits the DAGs to some schedules (and the report's DAG), e.g.
the production one in an image that installs only its plugins. Meltano's stock generator (files-airflow)
passes `schedule_interval`, which Airflow 3 removed; this file is its Airflow 3 replacement. It is not called
`meltano.py` because the DAG folder is on sys.path and that name would shadow the meltano package.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Asset, BaseOperator
from airflow.sdk.exceptions import AirflowException

# The DAG folder is on sys.path when Airflow parses or runs this file; the insert keeps the helpers
# importable for tools that load the file by path.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import meltano_project
from dbt_lineage import Table
from meltano_dbt import DbtStep, rendered_command
from meltano_project import MELTANO_BIN, PROJECT_ROOT
from meltano_run_log import MeltanoRunLog

# WHOOP rotates the refresh token on every use: two overlapping runs would both redeem the same token, and
# the loser (and possibly the stored token) would be locked out. Hence one active run per DAG and no
# catch-up (an incremental run fetches everything since the bookmark anyway, so back-filled runs add
# nothing). Within a run the extraction precedes every dbt task.
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
DBT_GROUP_ID = "dbt"


class MeltanoRunOperator(BaseOperator):
    """Runs `meltano run <blocks>` in the project; a non-zero exit fails the task, naming what broke.

    `reads` and `writes` are the warehouse tables it reads and writes: Airflow assets (inlets, outlets:
    a success records an event on each written one) and the inputs and outputs of its OpenLineage events.
    """

    ui_color = "#e9d8fd"

    def __init__(
        self,
        *,
        blocks: str,
        env: dict[str, str] | None = None,
        reads: list[Table] | None = None,
        writes: list[Table] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            inlets=[Asset(table.uri) for table in reads or []],
            outlets=[Asset(table.uri) for table in writes or []],
            **kwargs,
        )
        self.blocks = blocks
        self.env = env or {}
        self.reads = list(reads or [])
        self.writes = list(writes or [])
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

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage's inputs and outputs (its provider calls this once the task ended)."""
        # Imported when OpenLineage asks, so parsing never loads its client.
        from airflow.providers.openlineage.extractors import OperatorLineage
        from openlineage.client.event_v2 import Dataset

        return OperatorLineage(
            inputs=[Dataset(namespace=table.namespace, name=table.name) for table in self.reads],
            outputs=[Dataset(namespace=table.namespace, name=table.name) for table in self.writes],
        )

    def on_kill(self) -> None:
        # Meltano forwards SIGTERM to its plugins, so a killed task does not leave a tap holding the token.
        if self._process is not None and self._process.poll() is None:
            os.killpg(os.getpgid(self._process.pid), signal.SIGTERM)


def task_id_for(task: str) -> str:
    """'tap-whoop target-duckdb' -> 'tap-whoop_target-duckdb'; 'dbt-duckdb:build' -> 'dbt-duckdb_build'."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", task).strip("_")


def airflow_schedule(schedule: dict[str, Any]) -> str | None:
    """Meltano's cron (presets like @daily already expanded); `@manual` schedules only run when triggered."""
    if schedule.get("cron_interval"):
        return schedule["cron_interval"]
    return "@once" if schedule.get("interval") == "@once" else None


def job_steps(schedule: dict[str, Any], invocations: dict[str, meltano_project.Invocation]) -> list[Any]:
    """The job's tasks cut at its dbt builds: `meltano run` blocks (str) and DbtSteps, in order."""
    steps: list[Any] = []
    for block in meltano_project.job_blocks(schedule):
        pending: list[str] = []
        for token in shlex.split(block):
            plugin, _, command = token.partition(":")
            if command and rendered_command(invocations.get(plugin), command):
                if pending:
                    steps.append(shlex.join(pending))
                    pending = []
                steps.append(DbtStep.prepare(invocations[plugin], command, schedule.get("env") or {}))
            else:
                pending.append(token)
        if pending:
            steps.append(shlex.join(pending))
    return steps


def _task_ids(steps: list[Any]) -> list[str]:
    """One id per step; a repeated one gets the step's position (`say_hello`, ..., `say_hello_3`)."""
    ids: list[str] = []
    for position, step in enumerate(steps, start=1):
        task_id = task_id_for(step) if isinstance(step, str) else DBT_GROUP_ID
        ids.append(f"{task_id}_{position}" if task_id in ids else task_id)
    return ids


def dag_doc(schedule: dict[str, Any], steps: list[Any], task_ids: list[str]) -> str:
    """The DAG's doc_md: what it runs, from which schedule, and how to rerun one model."""
    job = schedule["job"]
    when = f"`{schedule['cron_interval']}` (UTC)" if schedule.get("cron_interval") else "only when triggered"
    lines = [
        f"Generated from the Meltano schedule **`{schedule['name']}`** (job `{job['name']}`, runs {when}) "
        f"in `{PROJECT_ROOT / 'meltano.yml'}` by `orchestrate/dags/meltano_schedules.py`; change the "
        "schedule there, not here. One run at a time, no catch-up.",
        "",
        "Runs, in order:",
    ]
    for number, (step, task_id) in enumerate(zip(steps, task_ids, strict=True), start=1):
        if isinstance(step, str):
            lines.append(
                f"{number}. `{task_id}`: `meltano run {step}` (an extraction saves its bookmark only once "
                "the loader has confirmed the data)."
            )
        else:
            lines.append(
                f"{number}. `{task_id}`: {step.describe()}, one task per model: "
                f"`{task_id}.source_freshness` first, then `{task_id}.{step.model_task('<model>')}` (a build "
                "runs the model's unit tests, the model and its data tests in one dbt process); tests across "
                "two models run after both."
            )
    dbt_steps = [(step, id_) for step, id_ in zip(steps, task_ids, strict=True) if not isinstance(step, str)]
    if dbt_steps:
        step, group = dbt_steps[0]
        lines += [
            "",
            "**Rerun one model** (after fixing it): open its failed task, e.g. "
            f"`{group}.{step.model_task('stg_whoop__cycles')}`, and *Clear* it with *Downstream* selected: "
            "that model and what depends on it run again, nothing is extracted again. From a shell: "
            f"`meltano invoke airflow tasks clear {schedule['name']} -t {group}.{step.model_task('<model>')} "
            "--downstream` (`-t` matches part of the task id). The same dbt outside Airflow: `meltano invoke "
            f"{step.invocation.name} {step.invocation.commands[step.command]} --select <model>`.",
            "",
            "A failing model's task log names the model, its file and dbt's error; the rendered models come "
            "from the dbt manifest built by `make dbt-manifests`.",
        ]
    return "\n".join(lines)


def build_dag(schedule: dict[str, Any], steps: list[Any]) -> DAG:
    job = schedule["job"]
    blocks = meltano_project.job_blocks(schedule)
    task_ids = _task_ids(steps)
    single_writer = any(not isinstance(step, str) and step.single_writer for step in steps)
    with DAG(
        dag_id=schedule["name"],
        description=f"meltano job {job['name']}: " + " → ".join(blocks),
        schedule=airflow_schedule(schedule),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=MAX_ACTIVE_RUNS,
        # A warehouse in one file (DuckDB) takes one writer at a time: its dbt tasks run one after another.
        max_active_tasks=1 if single_writer else 16,
        dagrun_timeout=DAGRUN_TIMEOUT,
        default_args=DEFAULT_ARGS,
        tags=["meltano", f"job:{job['name']}"],
        doc_md=dag_doc(schedule, steps, task_ids),
    ) as dag:
        previous = None
        for position, (step, task_id) in enumerate(zip(steps, task_ids, strict=True)):
            if isinstance(step, str):
                # What a dbt step right after reads as its sources is what this step loaded.
                following = steps[position + 1] if position + 1 < len(steps) else None
                current = MeltanoRunOperator(
                    task_id=task_id,
                    blocks=step,
                    env=schedule.get("env") or {},
                    writes=following.raw_tables() if isinstance(following, DbtStep) else [],
                )
            else:
                current = step.task_group(task_id)
            if previous is not None:
                previous >> current
            previous = current
    return dag


def report_dag(report: meltano_project.Invocation, dbt_steps: list[DbtStep]) -> DAG:
    """The report's DAG: `meltano run evidence:build` whenever every mart of its warehouse was rebuilt."""
    warehouse = report.env.get(meltano_project.REPORT_WAREHOUSE_ENV, "")
    steps = [step for step in dbt_steps if step.profile.get_profile_type() == warehouse]
    marts = sorted({table for step in steps for table in step.mart_tables()})
    if not marts:
        built = sorted({f"{step.invocation.name} ({step.profile.get_profile_type()})" for step in dbt_steps})
        raise meltano_project.MeltanoProjectError(
            f"The report reads the {warehouse!r} marts ({meltano_project.REPORT_WAREHOUSE_ENV}), which no "
            f"selected schedule's dbt names (they run {built}): select a schedule that builds them "
            "(Snowflake's also needs SNOWFLAKE_ACCOUNT where Airflow parses the DAGs), or leave "
            f"{meltano_project.REPORT_DAG_ID} out of MELTANO_DAG_SCHEDULES."
        )
    blocks = f"{report.name}:{meltano_project.REPORT_COMMAND}"
    with DAG(
        dag_id=meltano_project.REPORT_DAG_ID,
        description=f"meltano run {blocks}, whenever the marts it reads were rebuilt",
        # Every mart updated since the last build (one rebuild per pipeline run, not one per mart).
        schedule=[Asset(table.uri) for table in marts],
        start_date=START_DATE,
        catchup=False,
        max_active_runs=MAX_ACTIVE_RUNS,
        dagrun_timeout=DAGRUN_TIMEOUT,
        default_args=DEFAULT_ARGS,
        tags=["meltano", "report"],
        doc_md=(
            f"Builds the report (`meltano run {blocks}`, `make report`) from the {warehouse} marts each time "
            "all of them were rebuilt: "
            + ", ".join(f"`{table.name}`" for table in marts)
            + " (their assets, recorded by the dbt tasks of "
            + ", ".join(f"`{step.invocation.name}`" for step in steps)
            + "). It runs on no clock; trigger it by hand to rebuild the report now."
        ),
    ) as dag:
        MeltanoRunOperator(task_id=task_id_for(blocks), blocks=blocks, reads=marts)
    return dag


def build_dags() -> dict[str, DAG]:
    # One file read: parsing never starts Meltano (meltano_project.py says why).
    schedules, plugins = meltano_project.read_project()
    dags = {}
    dbt_steps: list[DbtStep] = []
    for schedule in schedules:
        invocations = {name: plugins[name] for name in meltano_project.commanded_plugins(schedule)}
        try:
            steps = job_steps(schedule, invocations)
            dags[schedule["name"]] = build_dag(schedule, steps)
        except meltano_project.MeltanoProjectError as exc:
            raise meltano_project.MeltanoProjectError(
                f"Schedule {schedule['name']}: {exc} (MELTANO_DAG_SCHEDULES=<names> makes DAGs of some "
                "schedules only.)"
            ) from exc
        dbt_steps += [step for step in steps if isinstance(step, DbtStep)]
    report = plugins.get(meltano_project.REPORT_PLUGIN)
    if report is not None and meltano_project.report_selected():
        dags[meltano_project.REPORT_DAG_ID] = report_dag(report, dbt_steps)
    return dags


globals().update(build_dags())
