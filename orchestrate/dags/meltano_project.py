"""What Meltano says about the project the DAGs come from: its job schedules and how it invokes a plugin.

Asked of Meltano itself (the `meltano` CLI, and Meltano's own plugin invoker through
`meltano_invocation.py` beside this file) so the DAGs never restate a setting. Parsing never starts
Meltano: Airflow re-parses DAG files every 30 seconds, a Meltano process costs seconds (more on a loaded
machine) and can fail. So the answers the DAGs' shape depends on are written at install/deploy time
(`describe_project`, run by `make dbt-manifests`) to `orchestrate/build/project-<environment>.json`, which
the DAG file reads (`read_project`), refusing it once meltano.yml changed; what a task's environment depends
on is asked when the task runs (`resolve_environment`), on the worker, with the worker's variables. Kept free
of Airflow imports: the manifest builder uses it too.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(os.environ.get("MELTANO_PROJECT_ROOT") or Path(__file__).resolve().parents[2])
# `meltano install` links the meltano that installed the project here; Airflow's venv does not contain
# meltano.
_MELTANO_LINK = PROJECT_ROOT / ".meltano" / "run" / "bin"
MELTANO_BIN = os.environ.get("MELTANO_BIN") or (str(_MELTANO_LINK) if _MELTANO_LINK.exists() else "meltano")
# Not under .meltano/run/: `meltano install` empties a plugin's run directory (.meltano/run/airflow), which
# would take the DAGs' inputs with it.
BUILD_SUBDIR = Path("orchestrate") / "build"
CACHE_DIR = PROJECT_ROOT / BUILD_SUBDIR
# Run by Meltano's interpreter, not imported: it imports meltano.
INVOCATION_HELPER = Path(__file__).resolve().with_name("meltano_invocation.py")
MELTANO_TIMEOUT = 120
# The report (reports/, `make report`: `meltano invoke evidence:build`) gets a DAG of its own, run when the
# marts it reads change. WHOOP_REPORT_WAREHOUSE (the plugin's `warehouse` setting) says which warehouse's
# marts: the dbt plugins of that adapter are the ones whose marts trigger it.
REPORT_DAG_ID = "whoop-report"
REPORT_PLUGIN = "evidence"
REPORT_COMMAND = "build"
REPORT_WAREHOUSE_ENV = "WHOOP_REPORT_WAREHOUSE"


class MeltanoProjectError(RuntimeError):
    """Meltano could not answer; the message says what to fix."""


@dataclass(frozen=True)
class Invocation:
    """How `meltano invoke <plugin>` runs a plugin, as far as the DAG's shape depends on it."""

    name: str
    plugin_type: str
    executable: str
    commands: dict[str, str]
    # The dbt settings that decide what is rendered (DBT_PROJECT_DIR, DBT_PROFILES_DIR, DBT_TARGET), as
    # Meltano resolved them when the project description was written; every other variable is resolved
    # when a task runs (resolve_environment), where the worker's environment is.
    env: dict[str, str]

    @property
    def is_dbt(self) -> bool:
        return Path(self.executable).name == "dbt"


def environment_name() -> str:
    """The Meltano environment `meltano invoke` would select here: MELTANO_ENVIRONMENT (also from `.env`),
    else meltano.yml's default_environment."""
    selected = os.environ.get("MELTANO_ENVIRONMENT") or dotenv_values().get("MELTANO_ENVIRONMENT")
    if selected:
        return selected
    import yaml  # a dependency of Airflow and of Meltano alike

    try:
        config = yaml.safe_load((PROJECT_ROOT / "meltano.yml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        config = {}
    return str(config.get("default_environment") or "none")


def project_fingerprint() -> str:
    """Changes whenever the project's configuration (meltano.yml and the YAML it includes) changes."""
    digest = hashlib.sha256()
    for path in sorted(PROJECT_ROOT.glob("*.yml")) + sorted(PROJECT_ROOT.glob("plugins/**/*.yml")):
        digest.update(str(path.relative_to(PROJECT_ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def description_path() -> Path:
    return CACHE_DIR / f"project-{environment_name()}.json"


def run_meltano(
    command: list[str], what: str, env: dict[str, str] | None = None, timeout: float = MELTANO_TIMEOUT
) -> str:
    """Run a meltano command in the project and return its stdout; a failure raises MeltanoProjectError
    with the command and the tail of its output (dbt, run through `meltano invoke`, reports on stdout)."""
    try:
        done = subprocess.run(  # noqa: S603 - fixed command, no shell
            command,
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MeltanoProjectError(
            f"Could not run `{shlex.join(command)}` in {PROJECT_ROOT} ({what}): {exc}. Set MELTANO_BIN to "
            "the meltano executable or run `meltano install` in the project."
        ) from exc
    if done.returncode != 0:
        error_tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
        raise MeltanoProjectError(
            f"`{shlex.join(command)}` failed in {PROJECT_ROOT} with exit code {done.returncode}:\n"
            + error_tail
        )
    return done.stdout


def load_schedules() -> list[dict[str, Any]]:
    """Meltano's job schedules (`meltano schedule list`); build time only."""
    command = [MELTANO_BIN, "--log-level=warning", "schedule", "list", "--format=json"]
    listed = run_meltano(command, "listing the schedules")
    try:
        exported = json.loads(listed)
        schedules = exported["schedules"]["job"]
    except (ValueError, KeyError, TypeError) as exc:
        raise MeltanoProjectError(
            f"Unexpected output from `{shlex.join(command)}`: {listed[:500]!r}"
        ) from exc
    legacy = [schedule["name"] for schedule in exported["schedules"].get("elt") or []]
    if legacy:
        raise MeltanoProjectError(
            f"Legacy `meltano elt` schedules are not supported, define them with a job: {legacy}"
        )
    return schedules


def _wanted_dags() -> list[str]:
    return [name.strip() for name in os.environ.get("MELTANO_DAG_SCHEDULES", "").split(",") if name.strip()]


def selected_schedules(schedules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The schedules that become DAGs: all, or those MELTANO_DAG_SCHEDULES names (comma-separated; it may
    also name the report's DAG, REPORT_DAG_ID)."""
    wanted = _wanted_dags()
    if not wanted:
        return schedules
    unknown = sorted(set(wanted) - {schedule["name"] for schedule in schedules} - {REPORT_DAG_ID})
    if unknown:
        raise MeltanoProjectError(
            f"MELTANO_DAG_SCHEDULES names schedules the project does not have: {unknown} "
            f"(it has {sorted(schedule['name'] for schedule in schedules)}, and the report's "
            f"{REPORT_DAG_ID})."
        )
    return [schedule for schedule in schedules if schedule["name"] in wanted]


def report_selected() -> bool:
    """Whether the report's DAG is wanted: MELTANO_DAG_SCHEDULES is unset or names it."""
    wanted = _wanted_dags()
    return not wanted or REPORT_DAG_ID in wanted


def job_blocks(schedule: dict[str, Any]) -> list[str]:
    """The job's tasks as `meltano run` arguments, e.g. ["tap-whoop target-duckdb dbt-duckdb:build"]."""
    return [task if isinstance(task, str) else " ".join(task) for task in schedule["job"]["tasks"]]


def commanded_plugins(schedule: dict[str, Any]) -> list[str]:
    """Plugins the job runs as `<plugin>:<command>` (utilities such as dbt), in order of appearance."""
    names: list[str] = []
    for block in job_blocks(schedule):
        for token in shlex.split(block):
            name = token.partition(":")[0]
            if ":" in token and name not in names:
                names.append(name)
    return names


def meltano_python() -> str:
    """The interpreter of the meltano executable (its script's #! line), which can import meltano."""
    found = shutil.which(MELTANO_BIN)
    if found is None:
        raise MeltanoProjectError(
            f"meltano not found (MELTANO_BIN={MELTANO_BIN!r}): set MELTANO_BIN to the meltano executable or "
            "run `meltano install` in the project."
        )
    script = Path(found).resolve()
    with script.open("rb") as head:
        first = head.readline(500).decode(errors="replace")
    if first.startswith("#!"):
        interpreter = first[2:].strip().split(" ")[0]
        if Path(interpreter).is_absolute() and Path(interpreter).name != "env" and Path(interpreter).exists():
            return interpreter
    sibling = script.with_name("python")
    if sibling.exists():
        return str(sibling)
    raise MeltanoProjectError(f"Cannot tell which Python runs {script}; set MELTANO_BIN to a venv's meltano.")


def _ask_invocations(
    names: list[str],
    extra_env: dict[str, str],
    base: dict[str, str] | None = None,
    optional: tuple[str, ...] = (),
) -> dict[str, dict[str, Any]]:
    """Meltano's own answer (meltano_invocation.py run by Meltano's interpreter) for the named plugins, in
    the environment `base` (default: this process's) plus `extra_env`; `optional` ones only if defined."""
    command = [meltano_python(), str(INVOCATION_HELPER), *names]
    command += ["--optional", *optional] if optional else []
    env = {**(os.environ if base is None else base), **extra_env}
    answer = run_meltano(command, "asking how Meltano invokes " + ", ".join(names), env)
    try:
        return json.loads(answer)["plugins"]
    except (ValueError, KeyError, TypeError) as exc:
        raise MeltanoProjectError(f"Unexpected output from `{shlex.join(command)}`: {exc}") from exc


_RENDERING_ENV = ("DBT_PROJECT_DIR", "DBT_PROFILES_DIR", "DBT_TARGET", REPORT_WAREHOUSE_ENV)


def describe_project() -> Path:
    """Write what the DAG file needs from Meltano (build time: `make dbt-manifests`), for this environment.

    The schedules, and for each plugin their jobs run as `<plugin>:<command>`: its executable, commands and
    the dbt settings that shape the rendered DAG; and the report's plugin, when the project defines it and its
    DAG is selected. The DAG file reads only this file, so parsing never starts Meltano (a process that costs
    seconds, and more on a loaded machine). No secrets: no variable values beyond those settings.
    """
    schedules = load_schedules()
    selected = selected_schedules(schedules)
    plugins: dict[str, dict[str, Any]] = {}
    by_env: dict[str, list[str]] = {}
    for schedule in selected:
        key = json.dumps(schedule.get("env") or {}, sort_keys=True)
        by_env.setdefault(key, []).extend(commanded_plugins(schedule))
    # The report runs with no schedule's env.
    report_env = json.dumps({})
    if report_selected():
        by_env.setdefault(report_env, [])
    for key, names in by_env.items():
        optional = (REPORT_PLUGIN,) if key == report_env and report_selected() else ()
        for name, plugin in _ask_invocations(sorted(set(names)), json.loads(key), optional=optional).items():
            resolved = {**os.environ, **json.loads(key), **plugin["env"]}
            plugins[name] = {
                "type": plugin["type"],
                "executable": plugin["executable"],
                "commands": plugin["commands"],
                "env": {
                    variable: resolved[variable] for variable in _RENDERING_ENV if resolved.get(variable)
                },
            }
    description = {
        "fingerprint": project_fingerprint(),
        "environment": environment_name(),
        "schedules": schedules,
        "plugins": plugins,
    }
    target = description_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}")
    partial.write_text(json.dumps(description, indent=2) + "\n")
    partial.replace(target)
    return target


def read_project() -> tuple[list[dict[str, Any]], dict[str, Invocation]]:
    """The selected schedules and the plugins they command, from the description `describe_project` wrote.

    Parse time: reads one file and hashes the project's YAML; a missing or stale description is an error
    naming the command that writes it.
    """
    path = description_path()
    fix = "run `make dbt-manifests` (or `python orchestrate/dags/dbt_manifest.py build`)"
    try:
        description = json.loads(path.read_text())
    except (OSError, ValueError):
        raise MeltanoProjectError(
            f"No description of the Meltano project for environment {environment_name()!r} in {path}: {fix}."
        ) from None
    if description.get("fingerprint") != project_fingerprint():
        raise MeltanoProjectError(
            f"The Meltano project changed since {path} was written (meltano.yml or plugins/*.yml): {fix}."
        )
    schedules = selected_schedules(description["schedules"])
    known = description["plugins"]
    missing = sorted({name for schedule in schedules for name in commanded_plugins(schedule)} - set(known))
    if missing:
        raise MeltanoProjectError(
            f"{path} does not describe {missing} (other schedules were selected): {fix}."
        )
    plugins = {
        name: Invocation(
            name=name,
            plugin_type=plugin["type"],
            executable=plugin["executable"],
            commands=plugin["commands"],
            env=plugin["env"],
        )
        for name, plugin in known.items()
    }
    return schedules, plugins


_ANSWERS: dict[str, dict[str, Any]] = {}


def resolve_environment(
    plugin: str, extra_env: dict[str, str], worker_env: dict[str, str] | None = None
) -> dict[str, str]:
    """Run time: the environment `meltano invoke <plugin>` would give the plugin here, now.

    The worker's variables (default: this process's) plus `extra_env` (the schedule's env), the variables
    Meltano sets for the plugin, its venv first on PATH and the project's `.env`, as Meltano's own plugin
    invoker computes them.
    """
    base = {**(os.environ if worker_env is None else worker_env), **extra_env}
    dotenv = dotenv_values()
    # A worker process that runs several tasks (`airflow dags test` runs them all in one) asks Meltano once
    # per question: a Meltano process costs seconds, and the answer changes only with the project's
    # configuration, its `.env` or the variables it was asked with, all of which are in the key.
    key = json.dumps([plugin, project_fingerprint(), dotenv, base], sort_keys=True)
    if key not in _ANSWERS:
        _ANSWERS[key] = _ask_invocations([plugin], extra_env, base)[plugin]
    answer = _ANSWERS[key]
    env = {**base, **dotenv}
    for key, value in answer["env"].items():
        if value == "" and key in ("VIRTUAL_ENV", "PYTHONPATH"):
            env.pop(key, None)
        else:
            env[key] = value
    if answer["path"]:
        env["PATH"] = os.pathsep.join(filter(None, [answer["path"], base.get("PATH", "")]))
    return env


def dotenv_values() -> dict[str, str]:
    """The project's `.env` values, which `meltano invoke` gives a plugin over the process's own variables."""
    dotenv = PROJECT_ROOT / ".env"
    if not dotenv.exists():
        return {}
    from dotenv import dotenv_values as read  # a dependency of Airflow and of Meltano alike

    return {key: value for key, value in read(dotenv).items() if value is not None}
