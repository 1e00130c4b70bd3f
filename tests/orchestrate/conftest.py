"""A real Airflow for the orchestrate tests: the venv `meltano install` makes for the `airflow` utility.

Airflow runs in its own venv (its pins clash with the root one), so the tests drive it as a subprocess, each
with a fresh AIRFLOW_HOME and SQLite metadata database under tmp_path: no state leaks between tests or into
the repository.
"""

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
    env = {key: value for key, value in os.environ.items() if not key.startswith(FOREIGN_PREFIXES)}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS_FOLDER),
        AIRFLOW__CORE__LOAD_EXAMPLES="false",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
        MELTANO_PROJECT_ROOT=str(project_root),
        **extra,
    )
    return env


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

    def parse(env: dict[str, str]) -> dict:
        result = subprocess.run(
            [airflow_venv / "bin" / "python", DAGBAG_REPORT, str(DAGS_FOLDER)],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(result.stdout.strip().splitlines()[-1])

    return parse
