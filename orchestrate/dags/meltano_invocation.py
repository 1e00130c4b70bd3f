"""Print, as one JSON object, how `meltano invoke <plugin>` would run each named utility plugin.

Run by Meltano's own interpreter (the DAG file finds it through MELTANO_BIN), never by Airflow's: it uses
Meltano's plugin invoker, so the executable, the commands and the environment it reports are the ones
`meltano invoke` uses, not a restatement of them. The DAG file runs dbt's tasks with exactly this.

    python meltano_invocation.py dbt-duckdb [dbt-snowflake ...] [--optional evidence ...]

For each plugin: its type, absolute executable, commands (name -> args), `env`, the variables Meltano sets
for it beyond what this process already had (values Meltano removes are given as ""), and `path`, what
Meltano puts in front of PATH (the plugin's venv). Values that come from
the project's `.env` file are left out (they may be secrets, and the output is cached on disk): the reader
loads `.env` itself at run time. `watched` names the variables whose values decided the answer, so a cache of
it can tell when it no longer holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
from typing import Any

from meltano.cli.cli import detect_selected_environment
from meltano.core.db import project_engine
from meltano.core.migration_service import MigrationService
from meltano.core.plugin.error import PluginNotFoundError
from meltano.core.plugin_invoker import invoker_factory
from meltano.core.project import Project

_ENV_REFERENCE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")


def _references(*values: Any) -> set[str]:
    """Variables referenced as $NAME or ${NAME} in (nested) raw setting values."""
    found: set[str] = set()
    for value in values:
        if isinstance(value, dict):
            found |= _references(*value.values())
        elif isinstance(value, list | tuple):
            found |= _references(*value)
        elif isinstance(value, str):
            found.update(_ENV_REFERENCE.findall(value))
    return found


async def _describe(project: Project, session: Any, name: str) -> dict[str, Any]:
    plugin = project.plugins.find_plugin(name, invokable=True)
    invoker = invoker_factory(project, plugin)
    service = invoker.settings_service
    async with invoker.prepared(session):
        env = invoker.env()
        executable = str(invoker.exec_path())

    dotenv = project.dotenv_env
    # PATH is this process's PATH with the plugin's venv first; the reader prepends `path` to its own PATH.
    path = env.pop("PATH", "")
    own_path = os.environ.get("PATH", "")
    path_prefix = path[: -len(own_path)].rstrip(os.pathsep) if own_path and path.endswith(own_path) else path
    tracking = set(invoker.tracker.env)
    contributed = {
        key: str(value)
        for key, value in env.items()
        if key not in tracking and os.environ.get(key) != str(value) and dotenv.get(key) != str(value)
    }
    # Meltano keeps its own venv's variables away from the plugin.
    removed = [key for key in ("VIRTUAL_ENV", "PYTHONPATH") if key in os.environ and key not in env]
    contributed.update(dict.fromkeys(removed, ""))

    watched = set(contributed)
    raw_values: list[Any] = [plugin.env, project.settings.env]
    if project.environment is not None:
        raw_values.append(project.environment.env)
    for setting in service.definitions():
        watched.update(variable.key for variable in service.setting_env_vars(setting))
        watched.update(filter(None, [setting.env, *setting.env_aliases]))
        raw, _ = service.get_with_source(setting.name, expand_env_vars=False)
        raw_values.append(raw)
    watched |= _references(*raw_values)
    # Meltano's own settings (MELTANO_DATABASE_URI, ...) and the environment selection.
    for setting in project.settings.definitions():
        watched.update(variable.key for variable in project.settings.setting_env_vars(setting))
    watched.update(("MELTANO_ENVIRONMENT", "MELTANO_PROJECT_ROOT"))

    return {
        "type": str(plugin.type),
        "executable": executable,
        "commands": {command: str(spec.args) for command, spec in plugin.all_commands.items()},
        "env": contributed,
        "path": path_prefix,
        "watched": sorted(watched),
    }


async def _main(names: list[str], optional: list[str]) -> dict[str, Any]:
    """The named plugins; an `optional` one the project does not define is left out."""
    project = Project.find()
    # The environment `meltano invoke` would select: MELTANO_ENVIRONMENT, `.env`, else the default.
    environment, _ = detect_selected_environment(
        cli_environment=None, cli_no_environment=False, project=project
    )
    if environment:
        project.activate_environment(environment)
    # As every meltano command does: the system database exists and is up to date before it is read.
    engine, session_maker = project_engine(project, default=True)
    MigrationService(engine).upgrade(silent=True)
    session = session_maker()
    try:
        described = {name: await _describe(project, session, name) for name in names}
        for name in optional:
            with contextlib.suppress(PluginNotFoundError):
                described[name] = await _describe(project, session, name)
        return {"plugins": described}
    finally:
        session.close()


if __name__ == "__main__":
    args = sys.argv[1:]
    split = args.index("--optional") if "--optional" in args else len(args)
    if not args[:split] + args[split + 1 :]:
        sys.exit("usage: python meltano_invocation.py PLUGIN [PLUGIN ...] [--optional PLUGIN ...]")
    # Meltano logs to stdout; only the JSON goes there.
    with contextlib.redirect_stdout(sys.stderr):
        described = asyncio.run(_main(args[:split], args[split + 1 :]))
    print(json.dumps(described))
