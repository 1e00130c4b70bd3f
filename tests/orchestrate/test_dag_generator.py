"""The DAG folder parsed by a real Airflow 3: each Meltano schedule a DAG, each job task a task, in order."""

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
THREE_HOURS_S = 3 * 3600


def meltano_schedules(meltano: Path, project_root: Path) -> dict:
    listed = subprocess.run(
        [meltano, "--log-level=warning", "schedule", "list", "--format=json"],
        cwd=project_root,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return {schedule["name"]: schedule for schedule in json.loads(listed.stdout)["schedules"]["job"]}


def test_project_schedules_become_dags(meltano, airflow_env, parse_dags):
    report = parse_dags(airflow_env(REPO))

    assert report["import_errors"] == {}
    schedules = meltano_schedules(meltano, REPO)
    assert set(report["dags"]) == set(schedules)

    production = report["dags"]["whoop-every-3h"]
    assert production["schedule"] == "0 */3 * * *"
    assert production["timetable"] == "CronTriggerTimetable"
    assert production["max_active_runs"] == 1
    assert production["catchup"] is False
    assert 0 < production["dagrun_timeout_s"] < THREE_HOURS_S
    assert production["fileloc"] == str(REPO / "orchestrate" / "dags" / "meltano_schedules.py")
    assert "job:whoop-snowflake" in production["tags"]
    job_tasks = schedules["whoop-every-3h"]["job"]["tasks"]
    assert [task["blocks"] for task in production["tasks"]] == job_tasks
    for task in production["tasks"]:
        assert task["operator"] == "MeltanoRunOperator"
        assert task["retries"] >= 1
        assert task["retry_delay_s"] >= 60

    duckdb = report["dags"]["whoop-duckdb-manual"]
    assert duckdb["schedule"] is None
    assert duckdb["max_active_runs"] == 1
    assert [task["blocks"] for task in duckdb["tasks"]] == schedules["whoop-duckdb-manual"]["job"]["tasks"]


MINI_PROJECT = """\
default_environment: dev
project_id: orchestrate-generator-test
send_anonymous_usage_stats: false
environments:
- name: dev
plugins:
  utilities:
  - name: say
    namespace: say
    executable: echo
    commands:
      hello: hello
      bye: bye
jobs:
- name: three-steps
  tasks:
  - say:hello
  - [say:bye, say:hello]
  - say:hello
schedules:
- name: hourly
  interval: '@hourly'
  job: three-steps
  env:
    GREETING: hi
- name: on-demand
  interval: '@manual'
  job: three-steps
"""


@pytest.fixture
def mini_project(tmp_path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "meltano.yml").write_text(MINI_PROJECT)
    return project


def test_each_job_task_becomes_a_task_in_order(meltano, mini_project, airflow_env, parse_dags):
    report = parse_dags(airflow_env(mini_project, MELTANO_BIN=str(meltano)))

    assert report["import_errors"] == {}
    assert set(report["dags"]) == {"hourly", "on-demand"}
    hourly = report["dags"]["hourly"]
    # Meltano expands presets; Airflow gets the cron.
    assert hourly["schedule"] == "0 * * * *"
    assert hourly["tags"] == ["job:three-steps", "meltano"]
    tasks = hourly["tasks"]
    assert [(task["task_id"], task["blocks"], task["upstream"]) for task in tasks] == [
        ("say_hello", "say:hello", []),
        ("say_bye_say_hello", "say:bye say:hello", ["say_hello"]),
        ("say_hello_3", "say:hello", ["say_bye_say_hello"]),
    ]
    assert {task["env"]["GREETING"] for task in tasks} == {"hi"}
    assert report["dags"]["on-demand"]["schedule"] is None


def test_failing_schedule_list_is_a_clear_import_error(meltano, mini_project, airflow_env, parse_dags):
    broken = MINI_PROJECT.replace("job: three-steps\n  env", "job: missing\n  env")
    (mini_project / "meltano.yml").write_text(broken)

    report = parse_dags(airflow_env(mini_project, MELTANO_BIN=str(meltano)))

    assert report["dags"] == {}
    (path, error), *_ = report["import_errors"].items()
    assert path.endswith("meltano_schedules.py")
    assert "meltano --log-level=warning schedule list --format=json` failed in" in error
    assert "missing" in error


def test_schedules_are_cached_until_the_project_changes(meltano, mini_project, airflow_env, parse_dags):
    first = parse_dags(airflow_env(mini_project, MELTANO_BIN=str(meltano)))
    assert set(first["dags"]) == {"hourly", "on-demand"}

    # Unchanged project: parsing does not run meltano at all (Airflow re-parses DAG files every 30 seconds).
    cached = parse_dags(airflow_env(mini_project, MELTANO_BIN="/bin/false"))
    assert cached["import_errors"] == {}
    assert set(cached["dags"]) == {"hourly", "on-demand"}

    (mini_project / "meltano.yml").write_text(
        MINI_PROJECT
        + textwrap.dedent("""\
        - name: nightly
          interval: '0 2 * * *'
          job: three-steps
        """)
    )
    changed = parse_dags(airflow_env(mini_project, MELTANO_BIN=str(meltano)))
    assert changed["import_errors"] == {}
    assert changed["dags"]["nightly"]["schedule"] == "0 2 * * *"
