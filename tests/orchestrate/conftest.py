"""A real Airflow for the orchestrate tests: the venv `meltano install` makes for the `airflow` utility.

Airflow runs in its own venv (its pins clash with the root one), so the tests drive it as a subprocess, each
with a fresh AIRFLOW_HOME and SQLite metadata database under tmp_path: no state leaks between tests or into
the repository. The DAGs are rendered from the project description and dbt manifests that `make dbt-manifests`
writes; the session writes them when they are missing or stale (other work keeps changing the models).
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from airflow_support import (
    BUILD_SUBDIR,
    DAGBAG_REPORT,
    DAGS_FOLDER,
    MELTANO,
    REPO,
    clean_environment,
    ensure_manifests,
)


@pytest.fixture(scope="session")
def repo_manifests() -> Path:
    """The repository's dbt manifests, current."""
    ensure_manifests(REPO)
    return REPO / BUILD_SUBDIR / "dbt"


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
