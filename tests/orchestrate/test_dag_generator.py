"""The DAG folder parsed by a real Airflow 3: each Meltano schedule a DAG, each job task a task, in order."""

import json
import shlex
import subprocess
import textwrap
from pathlib import Path

import pytest
from airflow_support import MANIFEST_TOOL, copy_project, descendants, ensure_manifests, manifest_file
from tap_whoop.streams.endpoints import STREAM_TYPES

REPO = Path(__file__).resolve().parents[2]
THREE_HOURS_S = 3 * 3600
REPORT_DAG = "whoop-report"


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


def meltano_config_env(meltano: Path, plugin: str, env: dict[str, str]) -> dict[str, str]:
    """`meltano config print <plugin> --format=env`: what Meltano exports for the plugin's settings."""
    printed = subprocess.run(
        [meltano, "--log-level=warning", "config", "print", plugin, "--format=env"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    # Lines are shell assignments: KEY='value'.
    return dict(shlex.split(line)[0].split("=", 1) for line in printed.stdout.splitlines() if "=" in line)


def manifest(plugin: str) -> dict:
    return json.loads(manifest_file(REPO, plugin).read_text())


def assert_one_task_per_model_in_dbt_order(dag: dict, el_task: str, dbt_manifest: dict) -> None:
    tasks = {task["task_id"]: task for task in dag["tasks"]}
    # The extraction runs first; every dbt task is downstream of it.
    assert dag["tasks"][0]["task_id"] == el_task
    assert descendants(el_task, tasks) == set(tasks) - {el_task}
    # One task per model, building it with its own tests (`dbt build --select <model>`).
    runs = {task["dbt_node"]: task for task in dag["tasks"] if task["dbt_command"] == ["build"]}
    models = {uid: node for uid, node in dbt_manifest["nodes"].items() if node["resource_type"] == "model"}
    assert set(runs) == set(models)
    for unique_id, node in models.items():
        task = runs[unique_id]
        assert node["name"] in task["task_id"]
        assert task["dbt_select"] == node["name"] or node["name"] in task["dbt_select"]
        # After every model it depends on.
        for parent in node["depends_on"]["nodes"]:
            if parent in models:
                assert task["task_id"] in descendants(runs[parent]["task_id"], tasks)
    # A test of two models (relationships) is a task of its own after both; every other test runs in its
    # model's build.
    tests = [task for task in dag["tasks"] if task["dbt_command"] == ["test"]]
    assert tests
    for test in tests:
        node = dbt_manifest["nodes"][test["dbt_node"]]
        parents = [parent for parent in node["depends_on"]["nodes"] if parent in models]
        assert len(parents) > 1
        assert all(test["task_id"] in descendants(runs[parent]["task_id"], tasks) for parent in parents)
    multi_parent = [
        uid
        for uid, node in dbt_manifest["nodes"].items()
        if node["resource_type"] == "test"
        and len([p for p in node["depends_on"]["nodes"] if p in models]) > 1
    ]
    assert sorted(test["dbt_node"] for test in tests if test["dbt_node"].startswith("test.")) == sorted(
        multi_parent
    )
    freshness = tasks["dbt.source_freshness"]
    assert freshness["dbt_command"] == ["source", "freshness"]
    assert freshness["upstream"] == [el_task]
    assert freshness["priority_weight"] > max(
        task["priority_weight"] for task in dag["tasks"] if task is not freshness
    )


def test_project_schedules_become_dags(meltano, airflow_env, parse_dags, repo_manifests):
    env = airflow_env(REPO)
    report = parse_dags(env)

    assert report["import_errors"] == {}
    schedules = meltano_schedules(meltano, REPO)
    # Every schedule, and the report's DAG.
    assert set(report["dags"]) == {*schedules, REPORT_DAG}

    production = report["dags"]["whoop-every-3h"]
    assert production["schedule"] == "0 */3 * * *"
    assert production["timetable"] == "CronTriggerTimetable"
    assert production["max_active_runs"] == 1
    assert production["catchup"] is False
    assert 0 < production["dagrun_timeout_s"] < THREE_HOURS_S
    assert production["fileloc"] == str(REPO / "orchestrate" / "dags" / "meltano_schedules.py")
    assert "job:whoop-snowflake" in production["tags"]
    assert schedules["whoop-every-3h"]["job"]["tasks"] == ["tap-whoop target-snowflake dbt-snowflake:build"]
    extract_load = production["tasks"][0]
    assert (extract_load["operator"], extract_load["blocks"]) == (
        "MeltanoRunOperator",
        "tap-whoop target-snowflake",
    )
    assert_one_task_per_model_in_dbt_order(
        production, "tap-whoop_target-snowflake", manifest("dbt-snowflake")
    )
    for task in production["tasks"]:
        if task["task_id"] != "dbt.source_freshness":
            assert task["retries"] >= 1
            assert task["retry_delay_s"] >= 60
        assert 0 < task["execution_timeout_s"] <= 3600
    # Warehouse threads in parallel on Snowflake; one writer at a time on DuckDB's single file.
    assert production["max_active_tasks"] > 1
    # doc_md: what it runs, from which schedule, how to rerun one model.
    doc = production["doc_md"]
    assert "`whoop-every-3h`" in doc
    assert "job `whoop-snowflake`" in doc
    assert "`meltano run tap-whoop target-snowflake`" in doc
    assert "**Rerun one model**" in doc
    assert "meltano invoke airflow tasks clear whoop-every-3h -t dbt.<model>_model_build --downstream" in doc
    assert "meltano invoke dbt-snowflake build --select <model>" in doc

    duckdb = report["dags"]["whoop-duckdb-manual"]
    assert duckdb["schedule"] is None
    assert duckdb["max_active_runs"] == 1
    assert duckdb["max_active_tasks"] == 1
    assert_one_task_per_model_in_dbt_order(duckdb, "tap-whoop_target-duckdb", manifest("dbt-duckdb"))


def test_lineage_assets_run_from_the_raw_tables_to_the_report(
    airflow_env, parse_dags, repo_manifests, tmp_path
):
    # dbt-duckdb names the database after the file, and the manifests were built for whoop.duckdb.
    duckdb_file = tmp_path / "whoop.duckdb"
    # A legacy account locator: OpenLineage names it with its region and cloud.
    env = airflow_env(REPO, WHOOP_DUCKDB_PATH=str(duckdb_file), SNOWFLAKE_ACCOUNT="xy12345.us-east-1")

    report = parse_dags(env)

    assert report["import_errors"] == {}
    streams = {vars(stream)["name"] for stream in STREAM_TYPES}
    sources = manifest("dbt-duckdb")["sources"].values()
    # The dbt sources are the raw tables: one per stream of the tap.
    assert {source["name"] for source in sources} == streams
    # The extract-load task writes them, as assets naming the warehouse: the DuckDB file, the Snowflake
    # account and database.
    for dag_id, warehouse in (
        ("whoop-duckdb-manual", f"duckdb:{duckdb_file}/{duckdb_file.stem}"),
        ("whoop-every-3h", "snowflake://xy12345.us-east-1.aws/WHOOP"),
    ):
        extract_load = report["dags"][dag_id]["tasks"][0]
        assert extract_load["operator"] == "MeltanoRunOperator"
        assert sorted(extract_load["outlets"]) == sorted(f"{warehouse}/raw/{stream}" for stream in streams)
        # Each model's task gives Airflow an asset per table it built (Cosmos, when it has run).
        model_runs = [task for task in report["dags"][dag_id]["tasks"] if task["dbt_command"] == ["build"]]
        assert model_runs
        assert {task["emit_datasets"] for task in model_runs} == {True}

    # The report: its own DAG, on no clock, run once every mart of its warehouse (DuckDB here) was rebuilt.
    report_dag = report["dags"][REPORT_DAG]
    assert report_dag["timetable"] == "AssetTriggeredTimetable"
    marts = [
        node
        for node in manifest("dbt-duckdb")["nodes"].values()
        if node["resource_type"] == "model" and node["original_file_path"].startswith("models/marts/")
    ]
    expected = sorted(
        f"duckdb:{duckdb_file}/{node['database']}/{node['schema']}/{node['alias']}" for node in marts
    )
    assert report_dag["schedule_assets"] == expected
    assert f"duckdb:{duckdb_file}/{duckdb_file.stem}/marts/fct_daily_health" in expected
    (build,) = report_dag["tasks"]
    assert (build["operator"], build["blocks"]) == ("MeltanoRunOperator", "evidence:build")
    assert sorted(build["inlets"]) == expected
    assert "`whoop.marts.fct_daily_health`" in report_dag["doc_md"]


def test_without_a_snowflake_account_the_snowflake_tables_go_unnamed(airflow_env, parse_dags, repo_manifests):
    report = parse_dags(airflow_env(REPO))

    assert report["import_errors"] == {}
    assert report["dags"]["whoop-every-3h"]["tasks"][0]["outlets"] == []
    # The report reads DuckDB, whose file is named whatever the environment.
    assert report["dags"][REPORT_DAG]["schedule_assets"]


def test_a_report_without_its_marts_is_a_clear_import_error(airflow_env, parse_dags, repo_manifests):
    # The report reads DuckDB (dev), but only the Snowflake schedule is selected.
    report = parse_dags(airflow_env(REPO, MELTANO_DAG_SCHEDULES=f"whoop-every-3h,{REPORT_DAG}"))

    assert report["dags"] == {}
    (error,) = report["import_errors"].values()
    last = error.strip().splitlines()[-1]
    assert "The report reads the 'duckdb' marts (WHOOP_REPORT_WAREHOUSE)" in last
    assert f"leave {REPORT_DAG} out of MELTANO_DAG_SCHEDULES" in last


def resolved_environment(meltano: Path, plugin: str, env: dict[str, str]) -> dict[str, str]:
    """What a dbt task puts in its process before dbt starts (meltano_project.resolve_environment)."""
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import meltano_project; "
        "print(json.dumps(meltano_project.resolve_environment(sys.argv[2], {})))"
    )
    done = subprocess.run(
        [meltano.with_name("python"), "-c", code, str(REPO / "orchestrate" / "dags"), plugin],
        env={**env, "MELTANO_BIN": str(meltano)},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_dbt_tasks_run_dbt_as_meltano_invoke_does(meltano, airflow_env, parse_dags, repo_manifests, tmp_path):
    # A variable the dbt plugin's settings read, set the way a user sets it where the worker runs.
    env = airflow_env(REPO, WHOOP_DUCKDB_PATH=str(tmp_path / "elsewhere.duckdb"))
    report = parse_dags(env)
    assert report["import_errors"] == {}

    for dag_id, plugin in (("whoop-duckdb-manual", "dbt-duckdb"), ("whoop-every-3h", "dbt-snowflake")):
        meltano_env = meltano_config_env(meltano, plugin, env)
        dbt_tasks = [task for task in report["dags"][dag_id]["tasks"] if task["dbt_command"]]
        assert dbt_tasks
        for task in dbt_tasks:
            # The plugin's own dbt, project, profiles.yml and target ...
            assert task["dbt_executable"] == str(
                REPO / ".meltano" / "utilities" / plugin / "venv" / "bin" / "dbt"
            )
            assert task["dbt_project_dir"] == meltano_env["DBT_PROJECT_DIR"]
            assert task["dbt_profiles_yml"] == str(Path(meltano_env["DBT_PROFILES_DIR"]) / "profiles.yml")
            assert task["dbt_target"] == meltano_env["DBT_TARGET"]
            # The operator's own variables are shown in Airflow's UI: nothing Meltano resolves goes there.
            assert task["env"] == {"DBT_TARGET_PATH": "target"}
        # ... and, when the task runs, every variable Meltano sets for it, with the value Meltano gives it.
        resolved = resolved_environment(meltano, plugin, env)
        assert {key: resolved.get(key) for key in meltano_env} == meltano_env
        assert resolved["PATH"].split(":")[0] == str(
            REPO / ".meltano" / "utilities" / plugin / "venv" / "bin"
        )
    assert resolved_environment(meltano, "dbt-duckdb", env)["WHOOP_DUCKDB_PATH"] == str(
        tmp_path / "elsewhere.duckdb"
    )


def test_the_prod_environment_renders_the_production_dag(meltano, airflow_env, parse_dags, repo_manifests):
    # As in the Astronomer image: the prod environment, only the production schedule, no Snowflake secrets.
    production = {"MELTANO_ENVIRONMENT": "prod", "MELTANO_DAG_SCHEDULES": "whoop-every-3h"}
    ensure_manifests(REPO, **production)
    env = airflow_env(REPO, **production)

    report = parse_dags(env)

    assert report["import_errors"] == {}
    assert set(report["dags"]) == {"whoop-every-3h"}
    assert {
        task["dbt_target"] for task in report["dags"]["whoop-every-3h"]["tasks"] if task["dbt_command"]
    } == {"snowflake"}


def test_unknown_schedule_names_are_a_clear_import_error(airflow_env, parse_dags, repo_manifests):
    report = parse_dags(airflow_env(REPO, MELTANO_DAG_SCHEDULES="whoop-every-3h,no-such-schedule"))

    assert report["dags"] == {}
    (error,) = report["import_errors"].values()
    assert "MELTANO_DAG_SCHEDULES names schedules the project does not have: ['no-such-schedule']" in error


def test_an_undescribed_project_is_a_clear_import_error(meltano, airflow_env, parse_dags, tmp_path):
    project = copy_project(tmp_path / "project")

    report = parse_dags(airflow_env(project, MELTANO_BIN=str(meltano)))

    assert report["dags"] == {}
    (error,) = report["import_errors"].values()
    last = error.strip().splitlines()[-1]
    assert "No description of the Meltano project for environment 'dev'" in last
    assert "make dbt-manifests" in last
    checked = subprocess.run(
        [meltano.with_name("python"), MANIFEST_TOOL, "check"],
        env=airflow_env(project, MELTANO_BIN=str(meltano)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert checked.returncode == 1
    assert "make dbt-manifests" in checked.stderr


def test_a_missing_manifest_is_a_clear_import_error(meltano, airflow_env, parse_dags, tmp_path):
    project = copy_project(tmp_path / "project")
    # The description alone (what a failed `make dbt-manifests` may leave behind), no manifest.
    code = "import sys; sys.path.insert(0, sys.argv[1]); import meltano_project as m; m.describe_project()"
    env = airflow_env(project, MELTANO_BIN=str(meltano))
    subprocess.run(
        [meltano.with_name("python"), "-c", code, str(REPO / "orchestrate" / "dags")],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )

    report = parse_dags(env)

    assert report["dags"] == {}
    (error,) = report["import_errors"].values()
    last = error.strip().splitlines()[-1]
    assert "No dbt manifest for dbt-" in last
    assert "make dbt-manifests" in last
    checked = subprocess.run(
        [meltano.with_name("python"), MANIFEST_TOOL, "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert checked.returncode == 1
    assert "No dbt manifest for dbt-duckdb" in checked.stderr


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


def describe(meltano: Path, project: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`dbt_manifest.py build` (`make dbt-manifests`) in `project`: the description the DAG file reads."""
    return subprocess.run(
        [meltano.with_name("python"), MANIFEST_TOOL, "build"],
        env={**env, "MELTANO_BIN": str(meltano)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_each_job_task_becomes_a_task_in_order(meltano, mini_project, airflow_env, parse_dags):
    assert describe(meltano, mini_project, airflow_env(mini_project)).returncode == 0
    # Parsing never starts Meltano: a meltano that cannot run changes nothing.
    report = parse_dags(airflow_env(mini_project, MELTANO_BIN="/bin/false"))

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


def test_failing_schedule_list_is_a_clear_build_error(meltano, mini_project, airflow_env, parse_dags):
    broken = MINI_PROJECT.replace("job: three-steps\n  env", "job: missing\n  env")
    (mini_project / "meltano.yml").write_text(broken)

    built = describe(meltano, mini_project, airflow_env(mini_project))

    assert built.returncode == 1
    assert "meltano --log-level=warning schedule list --format=json` failed in" in built.stderr
    assert "missing" in built.stderr
    report = parse_dags(airflow_env(mini_project))
    assert report["dags"] == {}
    (path, error), *_ = report["import_errors"].items()
    assert path.endswith("meltano_schedules.py")
    assert "make dbt-manifests" in error


def test_a_changed_project_is_refused_until_described_again(meltano, mini_project, airflow_env, parse_dags):
    assert describe(meltano, mini_project, airflow_env(mini_project)).returncode == 0
    nightly = MINI_PROJECT + textwrap.dedent("""\
        - name: nightly
          interval: '0 2 * * *'
          job: three-steps
        """)
    (mini_project / "meltano.yml").write_text(nightly)

    stale = parse_dags(airflow_env(mini_project, MELTANO_BIN="/bin/false"))
    assert stale["dags"] == {}
    (error,) = stale["import_errors"].values()
    assert "The Meltano project changed since" in error
    assert "make dbt-manifests" in error.strip().splitlines()[-1]

    assert describe(meltano, mini_project, airflow_env(mini_project)).returncode == 0
    changed = parse_dags(airflow_env(mini_project, MELTANO_BIN="/bin/false"))
    assert changed["import_errors"] == {}
    assert changed["dags"]["nightly"]["schedule"] == "0 2 * * *"


def test_meltano_install_keeps_what_the_dags_render_from(meltano, mini_project, airflow_env, parse_dags):
    # `meltano install` empties the run directory of each plugin it installs (.meltano/run/airflow for the
    # Airflow utility); `make plugins` after `make dbt-manifests` must not take the DAGs' inputs with it.
    with_airflow = MINI_PROJECT.replace(
        "  utilities:\n",
        "  utilities:\n  - name: airflow\n    namespace: airflow\n    pip_url: pip\n    executable: echo\n",
    )
    (mini_project / "meltano.yml").write_text(with_airflow)
    env = airflow_env(mini_project)
    assert describe(meltano, mini_project, env).returncode == 0
    marker = mini_project / ".meltano" / "run" / "airflow" / "generated.cfg"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("")

    installed = subprocess.run(
        [meltano, "install"], cwd=mini_project, env=env, capture_output=True, text=True, timeout=300
    )

    assert installed.returncode == 0, installed.stderr[-2000:]
    assert not marker.exists()  # Meltano did empty the plugin's run directory
    report = parse_dags(airflow_env(mini_project, MELTANO_BIN="/bin/false"))
    assert report["import_errors"] == {}
    assert set(report["dags"]) == {"hourly", "on-demand"}
