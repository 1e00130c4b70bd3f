"""A job's `<dbt plugin>:build` (or `:run`) step as an Astronomer Cosmos task group: one task per dbt model.

Inside the group `dbt`: `source_freshness` first, then per model one task `<model>_model_build`: `dbt
build` of that model (its unit tests, the model, its data tests: one dbt process a model, not one to run it
and another to test it), and each test that spans two models (`relationships_...`) in its own task after
both. A `run` step renders `<model>_run` (`dbt run`, no tests). A model's failure (or its tests') fails its
task and, through the dependencies, what depends on it; nothing else. A retry or a cleared task builds that
model again, never the extraction.

dbt runs exactly as `meltano invoke <plugin>` runs it: the plugin's own dbt executable (its venv), the
project, profiles.yml and target Meltano gives it (DBT_PROJECT_DIR, DBT_PROFILES_DIR, DBT_TARGET, read at
deploy time from the project description, meltano_project.py) and, asked of Meltano when each task runs,
every variable Meltano sets for it (WHOOP_DUCKDB_PATH, ...) over the worker's own environment (SNOWFLAKE_*,
...) and the project's `.env`. The group
is rendered from the plugin's dbt manifest (dbt_manifest.py), so parsing never runs dbt or needs a
warehouse. Each task's log lists every node's outcome, and a failure names the failing model, its file and
dbt's error, read from dbt's run_results.json (dbt_results.py).
"""

from __future__ import annotations

import os
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import meltano_project
import yaml
from airflow.sdk.exceptions import AirflowException
from cosmos.airflow.task_group import DbtTaskGroup
from cosmos.config import ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior
from cosmos.operators.local import DbtSourceLocalOperator
from dbt_lineage import Table, mart_tables, raw_tables, render_profile, warehouse_namespace
from dbt_manifest import current_manifest, dbt_dirs
from dbt_results import failure_summary, read_results

# Meltano's dbt commands Cosmos can render node by node; any other (say `build --full-refresh`) stays one
# `meltano run` task.
RENDERED_COMMANDS = {"build": TestBehavior.BUILD, "run": TestBehavior.NONE}
# Airflow weighs a task by what depends on it; freshness, on which nothing depends, should still go first.
FRESHNESS_PRIORITY = 1000
# The worker's environment before any task changed it: `airflow dags test` runs every task in one process,
# and Cosmos itself copies dbt's environment into os.environ after a run (for OpenLineage).
WORKER_ENV = dict(os.environ)
# Adapters whose warehouse is a file only one process may write at a time.
SINGLE_WRITER_ADAPTERS = {"duckdb"}


def report_dbt_results(project_dir: str, context: Any = None, **_: Any) -> None:
    """Cosmos callback after each dbt command: log every node's outcome; fail the task naming what failed."""
    task = context["task"]
    command = ["dbt", *task.base_cmd]
    for flag, value in (("--select", task.select), ("--exclude", task.exclude)):
        command += [flag, value] if value else []
    command = shlex.join(command)
    results = read_results(Path(project_dir) / "target")
    if results is None:
        task.log.warning("dbt recorded no results for `%s`; its output above says why.", command)
        return
    for result in results:
        if result.failed or result.status == "warn":
            task.log.warning("%s", result.describe())
        else:
            task.log.info("%s", result.describe())
    summary = failure_summary(command, results)
    if summary is not None:
        raise AirflowException(
            f"{summary}\nOnce fixed, clear {context['ti'].task_id} (with its downstream tasks) to run it "
            "again; clearing never extracts again."
        )


def meltano_environment(plugin: str, extra_env: dict[str, str], rendered: dict[str, str]):
    """A Cosmos interceptor, run in the task's process before dbt: the environment `meltano invoke` gives dbt.

    Asked of Meltano on the worker when the task runs (meltano_project.resolve_environment), so the
    worker's variables (WHOOP_DUCKDB_PATH, SNOWFLAKE_*, ...) and the project's `.env` count exactly as they
    do for `meltano invoke <plugin>`. Put in the task's process environment, not in the operator's `env`
    (stored and shown by Airflow as a rendered field), because it holds secrets. The task fails when Meltano
    now gives dbt another project, profiles or target than the DAG was rendered for.
    """

    def intercept(_context: Any, operator: Any) -> None:
        env = meltano_project.resolve_environment(plugin, extra_env, WORKER_ENV)
        changed = {name: env.get(name) for name, value in rendered.items() if env.get(name) != value}
        if changed:
            raise AirflowException(
                f"Meltano now gives {plugin} {changed}, the DAG was rendered for "
                f"{ {name: rendered[name] for name in changed} }: run `make dbt-manifests` "
                "(or `python orchestrate/dags/dbt_manifest.py build`) where the DAGs are deployed."
            )
        # The task's own process (Cosmos reads it, append_env); never the operator's `env`, which Airflow
        # stores and shows as a rendered field, also after execute.
        os.environ.clear()
        os.environ.update(env)
        operator.log.info(
            "dbt runs as `meltano invoke %s` would run it (%s)",
            plugin,
            shutil.which("dbt", path=env.get("PATH")),
        )

    return intercept


@dataclass(frozen=True)
class DbtStep:
    """Everything needed to render one dbt step, read before the DAG exists (it decides DAG settings)."""

    invocation: meltano_project.Invocation
    command: str
    # The schedule's env, passed to Meltano when the task asks it for dbt's environment.
    extra_env: dict[str, str]
    # The operator's own variables (visible in Airflow's UI): no secrets.
    env: dict[str, str]
    project_dir: Path
    manifest: Path
    profile: ProfileConfig
    # OpenLineage's name of the warehouse (None when the profile does not say where it parses, e.g. no
    # SNOWFLAKE_ACCOUNT): the tables' assets and lineage are named in it.
    namespace: str | None

    @classmethod
    def prepare(
        cls, invocation: meltano_project.Invocation, command: str, extra_env: dict[str, str]
    ) -> DbtStep:
        project_dir, profiles_dir = dbt_dirs(invocation)
        profiles_yml = profiles_dir / "profiles.yml"
        profile_name = yaml.safe_load((project_dir / "dbt_project.yml").read_text())["profile"]
        # dbt's own order: DBT_TARGET, else the profile's default target.
        target = invocation.env.get("DBT_TARGET") or yaml.safe_load(profiles_yml.read_text())[
            profile_name
        ].get("target", "default")
        # The profile as the task's dbt will render it: the worker's variables (parsing happens where the
        # tasks run), the project's `.env` over them, the dbt settings Meltano gives the plugin.
        variables = {
            "MELTANO_PROJECT_ROOT": str(meltano_project.PROJECT_ROOT),
            **os.environ,
            **extra_env,
            **meltano_project.dotenv_values(),
            **invocation.env,
        }
        env = {
            **extra_env,
            # Cosmos runs each task in a fresh copy of the project and reads dbt's results from its target/;
            # a DBT_TARGET_PATH of the worker would send them elsewhere (and mix concurrent tasks' files).
            "DBT_TARGET_PATH": "target",
        }
        return cls(
            invocation=invocation,
            command=command,
            extra_env=dict(extra_env),
            env=env,
            project_dir=project_dir,
            manifest=current_manifest(invocation.name, project_dir),
            profile=ProfileConfig(
                profile_name=profile_name, target_name=target, profiles_yml_filepath=profiles_yml
            ),
            namespace=warehouse_namespace(render_profile(profiles_yml, profile_name, target, variables)),
        )

    @property
    def single_writer(self) -> bool:
        return self.profile.get_profile_type() in SINGLE_WRITER_ADAPTERS

    def raw_tables(self) -> list[Table]:
        """The raw tables this step's dbt reads (its sources): what the extract-load before it writes."""
        return raw_tables(self.manifest, self.namespace) if self.namespace else []

    def mart_tables(self) -> list[Table]:
        return mart_tables(self.manifest, self.namespace) if self.namespace else []

    def model_task(self, model: str) -> str:
        """The id, inside the group, of the task that runs `model` (Cosmos's naming)."""
        if RENDERED_COMMANDS[self.invocation.commands[self.command]] is TestBehavior.BUILD:
            return f"{model}_model_build"
        return f"{model}_run"

    def describe(self) -> str:
        return (
            f"`{self.invocation.name}:{self.command}` (dbt {self.invocation.commands[self.command]}, target "
            f"`{self.profile.target_name}`, project {self.project_dir})"
        )

    def task_group(self, group_id: str) -> DbtTaskGroup:
        """The Cosmos task group; call inside the DAG's `with` block."""
        operator_args = {
            "env": self.env,
            "append_env": True,
            "install_deps": False,
            "callback": report_dbt_results,
            "interceptors": [meltano_environment(self.invocation.name, self.extra_env, self.invocation.env)],
        }
        execution = ExecutionConfig(
            execution_mode=ExecutionMode.LOCAL,
            invocation_mode=InvocationMode.SUBPROCESS,
            dbt_executable_path=self.invocation.executable,
        )
        group = DbtTaskGroup(
            group_id=group_id,
            project_config=ProjectConfig(
                dbt_project_path=self.project_dir, manifest_path=self.manifest, install_dbt_deps=False
            ),
            profile_config=self.profile,
            execution_config=execution,
            render_config=RenderConfig(
                load_method=LoadMode.DBT_MANIFEST,
                test_behavior=RENDERED_COMMANDS[self.invocation.commands[self.command]],
                should_detach_multiple_parents_tests=True,
                # Each model's task gives Airflow an asset per table it built and OpenLineage (when a
                # transport is configured) the tables it read and wrote; the report's DAG runs on them.
                emit_datasets=True,
            ),
            operator_args=operator_args,
        )
        DbtSourceLocalOperator(
            task_id="source_freshness",
            task_group=group,
            project_dir=str(self.project_dir),
            profile_config=self.profile,
            dbt_executable_path=self.invocation.executable,
            invocation_mode=InvocationMode.SUBPROCESS,
            manifest_filepath=str(self.manifest),
            priority_weight=FRESHNESS_PRIORITY,
            # A stale source does not become fresh by asking again before the next extraction.
            retries=0,
            doc_md="`dbt source freshness`: fails naming each source loaded longer ago than its error_after; "
            "the models run regardless (they build what arrived).",
            **operator_args,
        )
        return group


def rendered_command(invocation: meltano_project.Invocation | None, command: str) -> bool:
    """Whether `<plugin>:<command>` is a dbt build/run this module renders model by model."""
    return bool(invocation and invocation.is_dbt and invocation.commands.get(command) in RENDERED_COMMANDS)
