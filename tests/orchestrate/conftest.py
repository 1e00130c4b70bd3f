"""A real Airflow for the orchestrate tests: the venv `meltano install` makes for the `airflow` utility.

Airflow runs in its own venv (its pins clash with the root one), so the tests drive it as a subprocess, each
with a fresh AIRFLOW_HOME and SQLite metadata database under tmp_path: no state leaks between tests or into
the repository. The DAGs are rendered from the project description and dbt manifests that `make dbt-manifests`
writes; the session writes them when they are missing or stale (other work keeps changing the models).
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
    check = subprocess.run(
        [sys.executable, MANIFEST_TOOL, "check", *plugins],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check.returncode != 0:
        built = subprocess.run(
            [sys.executable, MANIFEST_TOOL, "build", *plugins],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert built.returncode == 0, built.stderr[-3000:]


@pytest.fixture(scope="session")
def repo_manifests() -> Path:
    """The repository's dbt manifests, current."""
    ensure_manifests(REPO)
    return REPO / BUILD_SUBDIR / "dbt"


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


@pytest.fixture(scope="session")
def meltano() -> Path:
    """The root venv's meltano: what `meltano install` links into .meltano/run/bin for the DAG file."""
    return MELTANO


@pytest.fixture(scope="session")
def airflow_venv() -> Path:
    """Airflow's venv: $AIRFLOW_VENV, else the Meltano utility's venv (installed here if missing)."""
    venv = Path(os.environ.get("AIRFLOW_VENV") or REPO / ".meltano" / "utilities" / "airflow" / "venv")
    if not (venv / "bin" / "airflow").exists():
        subprocess.run([MELTANO, "install", "airflow"], cwd=REPO, check=True, timeout=600)
    assert (venv / "bin" / "airflow").exists(), f"no Airflow in {venv}"
    return venv


@pytest.fixture(scope="session")
def migrated_db(airflow_venv, tmp_path_factory) -> Path:
    """One `airflow db migrate` per session; each test gets a copy of the migrated SQLite file."""
    home = tmp_path_factory.mktemp("airflow-template")
    env = airflow_environment(home, REPO)
    subprocess.run(
        [airflow_venv / "bin" / "airflow", "db", "migrate"],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return home / "airflow.db"


def airflow_environment(home: Path, project_root: Path, **extra: str) -> dict[str, str]:
    """The environment `meltano invoke airflow` would give Airflow, pointed at a private AIRFLOW_HOME."""
    return clean_environment(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS_FOLDER),
        AIRFLOW__CORE__LOAD_EXAMPLES="false",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
        # meltano.yml's settings for the airflow utility (meltano invoke airflow sets them).
        AIRFLOW__COSMOS__ENABLE_TELEMETRY="false",
        AIRFLOW__COSMOS__ENABLE_MEMORY_OPTIMISED_IMPORTS="true",
        AIRFLOW__COSMOS__CACHE_DIR=str(home / "cosmos"),
        MELTANO_PROJECT_ROOT=str(project_root),
        **extra,
    )


@pytest.fixture
def airflow_home(tmp_path, migrated_db) -> Path:
    home = tmp_path / "airflow"
    home.mkdir()
    shutil.copy(migrated_db, home / "airflow.db")
    return home


@pytest.fixture
def airflow_env(airflow_home):
    """Call with the Meltano project root (and extra variables) for the environment of an Airflow command."""

    def make(project_root: Path = REPO, **extra: str) -> dict[str, str]:
        return airflow_environment(airflow_home, project_root, **extra)

    return make


@pytest.fixture
def parse_dags(airflow_venv):
    """Parse the DAG folder with Airflow's DagBag: {"import_errors": {...}, "dags": {dag_id: {...}}}."""

    def parse(env: dict[str, str], dags_folder: Path = DAGS_FOLDER, python: Path | None = None) -> dict:
        result = subprocess.run(
            [python or airflow_venv / "bin" / "python", DAGBAG_REPORT, str(dags_folder)],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(result.stdout.strip().splitlines()[-1])

    return parse
