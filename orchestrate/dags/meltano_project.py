"""What Meltano says about the project the DAGs come from: its job schedules and how it invokes a plugin.

Asked of Meltano itself (the `meltano` CLI, and Meltano's own plugin invoker through
`meltano_invocation.py` beside this file) so the DAGs never restate a setting, and cached under
`.meltano/run/airflow/`, because Airflow re-parses DAG files every 30 seconds and a Meltano process costs
seconds. Kept free of Airflow imports: the manifest builder uses it too.
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
CACHE_DIR = PROJECT_ROOT / ".meltano" / "run" / "airflow"
# Run by Meltano's interpreter, not imported: it imports meltano.
INVOCATION_HELPER = Path(__file__).resolve().with_name("meltano_invocation.py")
MELTANO_TIMEOUT = 120


class MeltanoProjectError(RuntimeError):
    """Meltano could not answer; the message says what to fix."""


@dataclass(frozen=True)
class Invocation:
    """How `meltano invoke <plugin>` runs a plugin: what the DAG needs to run it the same way."""

    name: str
    plugin_type: str
    executable: str
    commands: dict[str, str]
    # Variables Meltano sets for the plugin on top of the environment it was asked in (.env values excluded).
    env: dict[str, str]
    # What Meltano puts in front of PATH (the plugin's venv).
    path: str

    @property
    def is_dbt(self) -> bool:
        return Path(self.executable).name == "dbt"

    def environment(self, base: dict[str, str]) -> dict[str, str]:
        """`base` as Meltano would hand it to the plugin (minus `.env` values, added at run time)."""
        env = {**base, **self.env}
        if self.path:
            env["PATH"] = os.pathsep.join(filter(None, [self.path, base.get("PATH", "")]))
        return env


def _project_fingerprint() -> hashlib._Hash:
    """Changes whenever the project's configuration or the selected environment changes."""
    digest = hashlib.sha256(os.environ.get("MELTANO_ENVIRONMENT", "").encode())
    for path in sorted(PROJECT_ROOT.glob("*.yml")) + sorted(PROJECT_ROOT.glob("plugins/**/*.yml")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest


def _values_digest(names: list[str], env: dict[str, str]) -> str:
    # Only a digest: the watched variables may include secrets, and this is written to disk.
    digest = hashlib.sha256()
    for name in names:
        digest.update(f"{name}\0{env.get(name, '')}\0{name in env}\0".encode())
    return digest.hexdigest()


def _read_cache(name: str) -> dict[str, Any] | None:
    try:
        cached = json.loads((CACHE_DIR / name).read_text())
    except (OSError, ValueError):
        return None
    return cached if isinstance(cached, dict) else None


def _write_cache(name: str, content: dict[str, Any]) -> None:
    # Best effort and atomic: parsers run concurrently, and a read-only project only costs a slower parse.
    try:
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        partial = CACHE_DIR / f"{name}.{os.getpid()}"
        partial.write_text(json.dumps(content))
        partial.chmod(0o600)
        partial.replace(CACHE_DIR / name)
    except OSError:
        pass


def _run_meltano(command: list[str], what: str, env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(  # noqa: S603 - fixed command, no shell
            command,
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=MELTANO_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MeltanoProjectError(
            f"Could not run `{shlex.join(command)}` in {PROJECT_ROOT} ({what}): {exc}. Set MELTANO_BIN to "
            "the meltano executable or run `meltano install` in the project."
        ) from exc
    if done.returncode != 0:
        error_tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise MeltanoProjectError(
            f"`{shlex.join(command)}` failed in {PROJECT_ROOT} with exit code {done.returncode}:\n"
            + error_tail
        )
    return done.stdout


def load_schedules() -> list[dict[str, Any]]:
    """Meltano's job schedules (`meltano schedule list`), cached until the project's configuration changes."""
    fingerprint = _project_fingerprint().hexdigest()
    cached = _read_cache("schedules.json")
    if cached and cached.get("fingerprint") == fingerprint:
        return cached["schedules"]

    command = [MELTANO_BIN, "--log-level=warning", "schedule", "list", "--format=json"]
    listed = _run_meltano(command, "listing the schedules")
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
    _write_cache("schedules.json", {"fingerprint": fingerprint, "schedules": schedules})
    return schedules


def selected_schedules() -> list[dict[str, Any]]:
    """The schedules that become DAGs: all, or those MELTANO_DAG_SCHEDULES names (comma-separated)."""
    schedules = load_schedules()
    wanted = [name.strip() for name in os.environ.get("MELTANO_DAG_SCHEDULES", "").split(",") if name.strip()]
    if not wanted:
        return schedules
    unknown = sorted(set(wanted) - {schedule["name"] for schedule in schedules})
    if unknown:
        raise MeltanoProjectError(
            f"MELTANO_DAG_SCHEDULES names schedules the project does not have: {unknown} "
            f"(it has {sorted(schedule['name'] for schedule in schedules)})."
        )
    return [schedule for schedule in schedules if schedule["name"] in wanted]


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


def plugin_invocations(names: list[str], extra_env: dict[str, str] | None = None) -> dict[str, Invocation]:
    """How Meltano invokes each named plugin, in the current environment plus `extra_env`.

    Cached; the cache holds while the project's configuration, `.env` and the variables Meltano's answer
    depended on (the plugins' setting variables, the ones their configuration references, MELTANO_*) are
    unchanged.
    """
    names = sorted(set(names))
    if not names:
        return {}
    env = {**os.environ, **(extra_env or {})}
    fingerprint = _project_fingerprint()
    dotenv = PROJECT_ROOT / ".env"
    fingerprint.update(b"\0.env\0" + (dotenv.read_bytes() if dotenv.exists() else b""))
    fingerprint.update(json.dumps([names, extra_env or {}], sort_keys=True).encode())
    key = fingerprint.hexdigest()
    cache_name = f"invocations-{key[:16]}.json"

    cached = _read_cache(cache_name)
    if (
        cached
        and cached.get("fingerprint") == key
        and cached.get("values") == _values_digest(cached.get("watched", []), env)
    ):
        described = cached["plugins"]
    else:
        command = [meltano_python(), str(INVOCATION_HELPER), *names]
        try:
            answer = _run_meltano(command, "asking how Meltano invokes " + ", ".join(names), env)
            described = json.loads(answer)["plugins"]
        except (ValueError, KeyError, TypeError) as exc:
            raise MeltanoProjectError(f"Unexpected output from `{shlex.join(command)}`: {exc}") from exc
        watched = sorted({name for plugin in described.values() for name in plugin["watched"]})
        values = _values_digest(watched, env)
        _write_cache(
            cache_name, {"fingerprint": key, "watched": watched, "values": values, "plugins": described}
        )
    return {
        name: Invocation(
            name=name,
            plugin_type=plugin["type"],
            executable=plugin["executable"],
            commands=plugin["commands"],
            env=plugin["env"],
            path=plugin["path"],
        )
        for name, plugin in described.items()
    }


def schedule_invocations(schedules: list[dict[str, Any]]) -> dict[str, dict[str, Invocation]]:
    """For each schedule, how Meltano invokes the plugins its job commands (one call per schedule env)."""
    by_env: dict[str, list[dict[str, Any]]] = {}
    for schedule in schedules:
        by_env.setdefault(json.dumps(schedule.get("env") or {}, sort_keys=True), []).append(schedule)
    found: dict[str, dict[str, Invocation]] = {}
    for env_key, group in by_env.items():
        names = [name for schedule in group for name in commanded_plugins(schedule)]
        invocations = plugin_invocations(names, json.loads(env_key))
        for schedule in group:
            found[schedule["name"]] = {name: invocations[name] for name in commanded_plugins(schedule)}
    return found


def dotenv_values() -> dict[str, str]:
    """The project's `.env` values, which `meltano invoke` gives a plugin over the process's own variables."""
    dotenv = PROJECT_ROOT / ".env"
    if not dotenv.exists():
        return {}
    from dotenv import dotenv_values as read  # a dependency of Airflow and of Meltano alike

    return {key: value for key, value in read(dotenv).items() if value is not None}
