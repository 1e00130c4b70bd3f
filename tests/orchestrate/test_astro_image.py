"""The Astronomer image without Docker: its requirement files install together, and its DAG folder imports.

There is no Docker daemon or registry here, so the image is taken apart: Airflow's side is a venv with what
the Astro Runtime ships (orchestrate/astro/runtime.txt: the Airflow this project runs, the Runtime's
providers) plus the image's requirements.txt; Meltano's side is built by the image's own build step
(orchestrate/astro/install.sh) in a tree laid out as the image lays it out (orchestrate/astro/project.py),
with the Dockerfile's ENV values, /usr/local/airflow moved under tmp_path. Then Airflow's DagBag, in the
Runtime-like venv, parses the tree's dags/ folder.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from airflow_support import DAGBAG_REPORT, astro_project, clean_environment

REPO = Path(__file__).resolve().parents[2]
ASTRO = REPO / "orchestrate" / "astro"
IMAGE_ROOT = "/usr/local/airflow"
UV = Path(sys.executable).with_name("uv")

# The image's build, taken apart: make test-all (nightly and on release tags), not make test.
pytestmark = [pytest.mark.timeout(1800), pytest.mark.image]


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9_.\-\[\]]+)==(\S+)", line.strip()):
            found[match[1].lower()] = match[2]
    return found


def dockerfile_env(root: Path) -> dict[str, str]:
    """The Dockerfile's ENV values, with the image's /usr/local/airflow at `root`."""
    text = (ASTRO / "Dockerfile").read_text().replace("\\\n", " ")
    env = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for key, value in re.findall(r"(\w+)=(\S+)", line[4:]):
                env[key] = value.replace(IMAGE_ROOT, str(root))
    return env


@pytest.fixture(scope="module")
def runtime_venv(tmp_path_factory) -> Path:
    """Airflow's environment as the Runtime image has it, plus the image's requirements.txt."""
    venv = tmp_path_factory.mktemp("astro-runtime") / "venv"
    subprocess.run([UV, "venv", "-q", "--python", sys.executable, venv], check=True, timeout=300)
    requirements = ["-r", ASTRO / "runtime.txt", "-r", ASTRO / "requirements.txt"]
    installed = subprocess.run(
        [UV, "pip", "install", "-q", "--python", venv / "bin" / "python", *requirements],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    return venv


def frozen(venv: Path) -> dict[str, str]:
    listed = subprocess.run(
        [UV, "pip", "freeze", "--python", venv / "bin" / "python"], capture_output=True, text=True, check=True
    )
    return {name.lower(): version for name, version in re.findall(r"^(\S+)==(\S+)$", listed.stdout, re.M)}


def test_the_image_requirements_install_beside_the_runtime_at_their_pins(runtime_venv):
    installed = frozen(runtime_venv)

    wanted = {**pins(ASTRO / "runtime.txt"), **pins(ASTRO / "requirements.txt")}
    assert {name: installed.get(name) for name in wanted} == wanted
    # The same Airflow, Cosmos and OpenLineage provider as the local utility the other tests run.
    local = pins(REPO / "plugins" / "requirements" / "airflow.txt")
    for package in ("apache-airflow", "astronomer-cosmos", "apache-airflow-providers-openlineage"):
        assert installed[package] == local[package], package
    checked = subprocess.run(
        [UV, "pip", "check", "--python", runtime_venv / "bin" / "python"], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_dag_folder_imports_from_the_image_layout(runtime_venv, tmp_path):
    root = tmp_path / "usr-local-airflow"
    astro_project.lay_out(root)
    assert sorted(path.name for path in (root / "dags").iterdir()) == sorted(
        path.name for path in (REPO / "orchestrate" / "dags").iterdir() if path.is_file()
    )
    image_env = dockerfile_env(root)
    env = clean_environment(
        **{
            **image_env,
            # Bytecode only speeds up the image's process starts; compiling it here would only cost test time.
            "UV_COMPILE_BYTECODE": "0",
        },
        AIRFLOW_HOME=str(tmp_path / "airflow-home"),
        AIRFLOW__CORE__DAGS_FOLDER=str(root / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="false",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{tmp_path / 'airflow.db'}",
    )

    # The Dockerfile's RUN, on the laid-out copy of the repository.
    built = subprocess.run(
        [Path(image_env["MELTANO_PROJECT_ROOT"]) / "orchestrate" / "astro" / "install.sh"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert built.returncode == 0, (built.stdout + built.stderr)[-5000:]
    assert "dbt-snowflake: up to date" in built.stdout

    parsed = subprocess.run(
        [runtime_venv / "bin" / "python", DAGBAG_REPORT, root / "dags"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert parsed.returncode == 0, parsed.stderr[-3000:]
    report = json.loads(parsed.stdout.strip().splitlines()[-1])
    assert report["import_errors"] == {}
    # Only the production schedule (the image installs only its plugins).
    assert set(report["dags"]) == {"whoop-every-3h"}
    tasks = report["dags"]["whoop-every-3h"]["tasks"]
    assert tasks[0]["task_id"] == "tap-whoop_target-snowflake"
    project = Path(image_env["MELTANO_PROJECT_ROOT"])
    dbt_tasks = [task for task in tasks if task["dbt_executable"]]
    assert dbt_tasks
    assert {task["dbt_executable"] for task in dbt_tasks} == {
        str(project / ".meltano" / "utilities" / "dbt-snowflake" / "venv" / "bin" / "dbt")
    }
    assert {task["dbt_target"] for task in dbt_tasks} == {"snowflake"}
    assert {task["dbt_project_dir"] for task in dbt_tasks} == {str(project / "transform")}
