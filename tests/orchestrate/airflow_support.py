"""What the orchestrate tests share besides their fixtures (conftest.py, which tests never import: another
directory's conftest may be the module of that name): the repository's paths, a clean environment for Meltano
and Airflow, the project description and manifests, a copy of the project as the Astro image gets it."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO / "orchestrate" / "dags"
MELTANO = Path(sys.executable).with_name("meltano")
DAGBAG_REPORT = Path(__file__).with_name("dagbag_report.py")
# Whatever a developer exported for their own Airflow, account or warehouse must not reach a test run.
FOREIGN_PREFIXES = ("AIRFLOW", "MELTANO_", "TAP_WHOOP_", "TARGET_", "DBT_", "SNOWFLAKE_", "WHOOP_")
MANIFEST_TOOL = DAGS_FOLDER / "dbt_manifest.py"
sys.path.insert(0, str(DAGS_FOLDER))
from meltano_project import BUILD_SUBDIR  # noqa: E402 - the DAG folder's modules are not a package


def manifest_file(project_root: Path, plugin: str) -> Path:
    """Where `make dbt-manifests` leaves `plugin`'s dbt manifest in the project at `project_root`."""
    return project_root / BUILD_SUBDIR / "dbt" / plugin / "manifest.json"


def descendants(task_id: str, tasks: dict[str, dict]) -> set[str]:
    """Every task downstream of `task_id`, directly or not (`tasks`: the DAG report's tasks by id)."""
    found, todo = set(), [task_id]
    while todo:
        for child in tasks[todo.pop()]["downstream"]:
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without anything a developer exported for their own pipeline."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(FOREIGN_PREFIXES)}
    return {**env, "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false", **extra}


def ensure_manifests(project_root: Path, *plugins: str, **extra_env: str) -> None:
    """`dbt_manifest.py check`, and `build` when the project description or a manifest is missing or stale
    (`extra_env`: e.g. MELTANO_ENVIRONMENT, for which environment)."""
    env = clean_environment(MELTANO_PROJECT_ROOT=str(project_root), MELTANO_BIN=str(MELTANO), **extra_env)

    def manifest_tool(command: str, timeout: int) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, MANIFEST_TOOL, command, *plugins],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    if manifest_tool("check", timeout=300).returncode != 0:
        built = manifest_tool("build", timeout=900)
        assert built.returncode == 0, built.stderr[-3000:]


def _astro_project():
    spec = importlib.util.spec_from_file_location(
        "astro_project", REPO / "orchestrate" / "astro" / "project.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


astro_project = _astro_project()


def copy_project(destination: Path) -> Path:
    """The repository's files (as the Astro project gets them) at `destination`, sharing the installed
    plugins (.meltano's venvs) but with its own Meltano run directory, caches and manifests."""
    astro_project.copy_repository(destination)
    (destination / ".meltano").mkdir()
    for kind in ("extractors", "loaders", "utilities"):
        (destination / ".meltano" / kind).symlink_to(REPO / ".meltano" / kind)
    return destination
