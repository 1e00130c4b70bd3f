"""Real Airflow runs of the DuckDB variant of the schedule against the WHOOP sandbox, via `meltano invoke`.

`whoop-duckdb-manual` is `whoop-every-3h` with DuckDB in place of Snowflake (job whoop-duckdb), so these runs
exercise the generated DAG, the extract-load operator, the Cosmos task per dbt model and the whole pipeline.
Everything a run writes (Airflow's home and metadata DB, Meltano's system DB, the DuckDB file, the token
store, dbt's target) lives in tmp_path.
"""

import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import duckdb
import pytest
import zones
from airflow_support import copy_project, descendants, ensure_manifests, manifest_file

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "whoop-duckdb-manual"
REPORT_DAG = "whoop-report"
EL_TASK = "tap-whoop_target-duckdb"
STREAMS = ("cycles", "sleeps", "recoveries", "workouts", "profile", "body_measurement")
# A model with one model depending on it: the rerun (a scheduler, each task in a worker process of its own,
# the dearest tasks there are) is then a handful of tasks; which tasks a failure holds back is checked
# against dbt's whole graph in test_dag_generator.
BROKEN_MODEL = "stg_whoop__profile"
# A safety net, not a speed goal: one `dags test` is ~36 tasks of ~15 s each when the machine is busy (make
# test runs these tests beside the rest of the suite), and the schedule's test then reruns part of it.
RUN_TIMEOUT = 1800

pytestmark = pytest.mark.timeout(2 * RUN_TIMEOUT + 600)


@pytest.fixture
def sandbox(whoop_sandbox_factory):
    # Small and without rate limits: pacing has its own tests; here only the orchestration matters.
    return whoop_sandbox_factory(days=14, athletes=1, rate_limits=[])


@pytest.fixture
def pipeline_env(tmp_path, sandbox, airflow_env):
    """Airflow's environment plus the pipeline's settings, all pointed at the sandbox and tmp_path."""

    def make(project_root: Path = REPO, **extra: str) -> dict[str, str]:
        settings = dict(
            # Airflow, Meltano, the tap and dbt on a machine a day behind UTC (tests/zones.py).
            TZ=zones.BEHIND,
            MELTANO_DATABASE_URI=f"sqlite:///{tmp_path / 'meltano.db'}",
            TAP_WHOOP_API_URL=sandbox.api_url,
            TAP_WHOOP_TOKEN_URL=sandbox.token_url,
            TAP_WHOOP_CLIENT_ID=sandbox.client_id,
            TAP_WHOOP_CLIENT_SECRET=sandbox.client_secret,
            TAP_WHOOP_REFRESH_TOKEN=sandbox.grant_refresh_token(athlete=0),
            TAP_WHOOP_START_DATE="2000-01-01T00:00:00Z",
            TAP_WHOOP_TOKEN_STORE=str(tmp_path / "tokens.json"),
            WHOOP_DUCKDB_PATH=str(tmp_path / "whoop.duckdb"),
            DBT_TARGET_PATH=str(tmp_path / "dbt-target"),
            DBT_LOG_PATH=str(tmp_path / "dbt-logs"),
            # A failed task fails the run at once instead of `dags test` waiting out the retry delay.
            MELTANO_DAG_RETRIES="0",
        )
        return airflow_env(project_root, **{**settings, **extra})

    return make


def invoke_airflow(meltano: Path, env: dict[str, str], *args: str, cwd: Path = REPO, check=True) -> str:
    """`meltano invoke airflow ...` from the project root, as a user runs it; returns the combined output."""
    # Its own process group, so a timeout also ends Airflow and the pipeline it started, not just meltano.
    process = subprocess.Popen(
        [meltano, "invoke", "airflow", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"`airflow {' '.join(args)}` ran over {RUN_TIMEOUT} s:\n{output[-5000:]}")
    if check:
        assert process.returncode == 0, output[-5000:]
    return output


def table_counts(db_path: Path, schema: str) -> dict[str, int]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        tables = con.execute(
            "select table_name from information_schema.tables where table_schema = ?", [schema]
        ).fetchall()
        return {
            name: con.execute(f'select count(*) from "{schema}"."{name}"').fetchone()[0] for (name,) in tables
        }


def task_instances(airflow_home: Path) -> dict[str, tuple[str, int]]:
    """{task_id: (state, try_number)} of the DAG's (only) run, from Airflow's metadata DB."""
    with sqlite3.connect(airflow_home / "airflow.db") as metadata:
        rows = metadata.execute(
            "select task_id, state, try_number from task_instance where dag_id = ?", [DAG_ID]
        ).fetchall()
    return {task_id: (state, tries) for task_id, state, tries in rows}


def run_states(airflow_home: Path) -> list[str]:
    with sqlite3.connect(airflow_home / "airflow.db") as metadata:
        return [row[0] for row in metadata.execute("select state from dag_run where dag_id = ?", [DAG_ID])]


def manifest_models(project_root: Path) -> dict[str, dict]:
    nodes = json.loads(manifest_file(project_root, "dbt-duckdb").read_text())["nodes"]
    return {node["name"]: node for node in nodes.values() if node["resource_type"] == "model"}


def dependent_models(project_root: Path, model: str) -> set[str]:
    """Every model that depends on `model`, directly or not, in dbt's graph (the manifest's child map)."""
    manifest = json.loads(manifest_file(project_root, "dbt-duckdb").read_text())
    found, todo = set(), [f"model.whoop.{model}"]
    while todo:
        for child in manifest["child_map"][todo.pop()]:
            if child.startswith("model.") and child not in found:
                found.add(child)
                todo.append(child)
    return {manifest["nodes"][unique_id]["name"] for unique_id in found}


def model_task(model: str, task_ids) -> str:
    """The task that builds `model` (with its tests): `dbt.<model>_model_build`, which must be in the DAG."""
    task_id = f"dbt.{model}_model_build"
    assert task_id in task_ids, sorted(task_ids)
    return task_id


def test_failing_tap_is_named_in_the_task_log(meltano, pipeline_env, repo_manifests):
    # A refresh token WHOOP does not know (revoked, or rotated by a run that overlapped this one).
    env = pipeline_env(TAP_WHOOP_REFRESH_TOKEN="fake-revoked-refresh-token")

    output = invoke_airflow(meltano, env, "tasks", "test", DAG_ID, EL_TASK)

    assert "Task failed with exception" in output
    assert "new_state=failed" in output
    summary = output[output.index("`meltano run tap-whoop target-duckdb` failed") :]
    assert "Failed block: Extractor failed" in summary
    assert "Failing plugin: tap-whoop" in summary
    error = next(line for line in summary.splitlines() if line.startswith("Error: "))
    assert len(error) > len("Error: ") + 10
    assert "fake-revoked-refresh-token" not in output


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def run_scheduler_until_done(meltano: Path, env: dict[str, str], cwd: Path, airflow_home: Path) -> str:
    """A real scheduler (LocalExecutor, each task in its own worker process) and API server, until the
    DAG's run is finished again; returns their output."""
    port = free_port()
    env = {
        **env,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        # The scheduler signs the workers' tokens and the API server checks them: one secret for both.
        "AIRFLOW__API_AUTH__JWT_SECRET": "orchestrate-test-secret",
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "1",
    }
    log_path = airflow_home / "components.log"
    processes: list[subprocess.Popen] = []
    deadline = time.monotonic() + RUN_TIMEOUT

    def check_alive() -> None:
        assert time.monotonic() < deadline, log_path.read_text()[-5000:]
        assert all(process.poll() is None for process in processes), log_path.read_text()[-5000:]
        time.sleep(1)

    with log_path.open("w") as log:
        try:
            # The API server first: workers report to it from their first moment.
            for command in (["api-server", "--port", str(port)], ["scheduler"]):
                processes.append(
                    subprocess.Popen(
                        [meltano, "invoke", "airflow", *command],
                        cwd=cwd,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
                while command[0] == "api-server" and not port_open(port):
                    check_alive()
            while run_states(airflow_home) not in (["success"], ["failed"]):
                check_alive()
        finally:
            for process in processes:
                os.killpg(process.pid, signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
    return log_path.read_text()


def task_logs(airflow_home: Path) -> str:
    """Every task log the scheduler's workers wrote (one file per task attempt)."""
    return "\n".join(path.read_text() for path in sorted((airflow_home / "logs").rglob("*.log")))


def lineage_events(path: Path) -> dict[str, dict]:
    """The last COMPLETE event of each job (`<dag>.<task>`) OpenLineage's file transport wrote."""
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {event["job"]["name"]: event for event in events if event["eventType"] == "COMPLETE"}


def datasets(event: dict, side: str) -> set[tuple[str, str]]:
    return {(dataset["namespace"], dataset["name"]) for dataset in event.get(side) or []}


def parent_tables(manifest: dict, model: str, warehouse: str) -> set[tuple[str, str]]:
    """The tables `model` selects from in dbt's graph (sources and models), as OpenLineage names them."""
    nodes = {**manifest["nodes"], **manifest["sources"]}
    parents = [nodes[unique_id] for unique_id in nodes[f"model.whoop.{model}"]["depends_on"]["nodes"]]
    return {
        # A source's table is named by the source's name, a model's by its alias.
        (warehouse, f"{node['database']}.{node['schema']}.{node.get('alias') or node['name']}")
        for node in parents
    }


def updated_assets(airflow_home: Path) -> set[str]:
    """The URIs of the assets some task recorded an event on, from Airflow's metadata DB."""
    with sqlite3.connect(airflow_home / "airflow.db") as metadata:
        rows = metadata.execute("select distinct a.uri from asset_event e join asset a on a.id = e.asset_id")
        return {uri for (uri,) in rows}


def test_the_duckdb_schedule_lands_data_and_a_broken_model_fails_alone_then_reruns_without_extracting(
    meltano, sandbox, pipeline_env, airflow_home, tmp_path, parse_dags, repo_manifests
):
    """One real run of the whole schedule (a `dags test` of ~36 tasks is the costliest thing in the suite, so
    this one run serves every question): everything but a broken model and what depends on it lands; once
    the model is fixed and its tasks cleared, a scheduler reruns just those, without extracting again; and
    the run's lineage (OpenLineage's events, Airflow's assets) goes WHOOP → raw → staging → marts."""
    project = copy_project(tmp_path / "project")
    model_file = project / "transform" / manifest_models(REPO)[BROKEN_MODEL]["original_file_path"]
    fixed_sql = model_file.read_text()
    model_file.write_text("select no_such_column from {{ source('whoop', 'profile') }}\n")
    ensure_manifests(project, "dbt-duckdb")
    lineage_file = tmp_path / "lineage.jsonl"
    # Only this schedule's plugins have manifests in the copy; the report's DAG is scheduled on its marts.
    env = pipeline_env(
        project,
        MELTANO_BIN=str(meltano),
        MELTANO_DAG_SCHEDULES=f"{DAG_ID},{REPORT_DAG}",
        AIRFLOW__OPENLINEAGE__TRANSPORT=json.dumps(
            {"type": "file", "log_file_path": str(lineage_file), "append": True}
        ),
        # OpenLineage drops an event whose extraction outlasts this (default 10 s): not on a busy machine.
        AIRFLOW__OPENLINEAGE__EXECUTION_TIMEOUT="600",
    )
    report = parse_dags(env)
    assert report["import_errors"] == {}
    tasks = {task["task_id"]: task for task in report["dags"][DAG_ID]["tasks"]}

    # The run fails (so does the command); what failed is read from Airflow's metadata DB.
    output = invoke_airflow(meltano, env, "dags", "test", DAG_ID, cwd=project, check=False)

    assert run_states(airflow_home) == ["failed"]
    # The extraction is one task; each dbt model its own, freshness first among them.
    assert EL_TASK in tasks
    assert "dbt.source_freshness" in tasks
    models = manifest_models(project)
    assert set(models) == set(manifest_models(REPO))
    failed_task = model_task(BROKEN_MODEL, tasks)
    downstream = descendants(failed_task, tasks)
    # Everything that depends on the model in dbt's graph is downstream of its task.
    dependants = dependent_models(project, BROKEN_MODEL)
    assert dependants
    assert {model_task(name, tasks) for name in dependants} <= downstream
    after_failure = task_instances(airflow_home)
    states = {task_id: state for task_id, (state, _) in after_failure.items()}
    assert states.pop(failed_task) == "failed"
    assert {states.pop(task_id) for task_id in downstream} == {"upstream_failed"}
    # Unrelated models (and the extraction, and freshness) succeeded.
    assert model_task("stg_whoop__cycles", tasks) in states
    assert set(states.values()) == {"success"}, states
    assert "`meltano run tap-whoop target-duckdb` succeeded" in output
    assert "[tap-whoop]" in output
    # Each task's log lists its nodes' outcomes from dbt's run_results.json: the failing one names the
    # model, its file and dbt's error.
    path = models[BROKEN_MODEL]["original_file_path"]
    failure = next(
        line for line in output.splitlines() if f"dbt model {BROKEN_MODEL} ({path}): error:" in line
    )
    assert "no_such_column" in failure
    held_back = {BROKEN_MODEL, *dependants}
    for model, node in models.items():
        if model not in held_back:
            assert f"dbt model {model} ({node['original_file_path']}): success" in output, model

    # Fixed, the manifest rebuilt, the failed task cleared with its downstream tasks: a scheduler reruns them.
    model_file.write_text(fixed_sql)
    ensure_manifests(project, "dbt-duckdb")
    requests_before = len(sandbox.request_log)
    # Airflow 3.3 matches -t as a substring of the task id.
    invoke_airflow(
        meltano, env, "tasks", "clear", DAG_ID, "-t", failed_task, "--downstream", "--yes", cwd=project
    )
    invoke_airflow(meltano, env, "dags", "unpause", DAG_ID, cwd=project)
    components = run_scheduler_until_done(meltano, env, project, airflow_home)

    assert run_states(airflow_home) == ["success"], components[-5000:]
    instances = task_instances(airflow_home)
    assert {state for state, _ in instances.values()} == {"success"}
    # Only the cleared tasks ran again; the extraction did not, and WHOOP was not called.
    rerun = {task_id for task_id, (_, tries) in instances.items() if tries > after_failure[task_id][1]}
    assert rerun == {failed_task, *downstream}
    assert instances[EL_TASK] == after_failure[EL_TASK] == ("success", 1)
    assert len(sandbox.request_log) == requests_before
    logs = task_logs(airflow_home)
    for model in held_back:
        assert f"dbt model {model} ({models[model]['original_file_path']}): success" in logs, model

    # What the whole schedule landed: every stream in raw, a staging model each, every mart.
    db_path = tmp_path / "whoop.duckdb"
    raw = table_counts(db_path, "raw")
    assert all(raw.get(stream, 0) > 0 for stream in STREAMS), raw
    with duckdb.connect(str(db_path), read_only=True) as con:
        users = {row[0] for row in con.execute("select distinct user_id from raw.cycles").fetchall()}
    assert users == {sandbox.athletes[0].user_id}
    staging = table_counts(db_path, "staging")
    # One staging model per served stream (deletions, another staging model, are none here).
    assert all(staging.get(f"stg_whoop__{stream}", 0) > 0 for stream in STREAMS), staging
    marts = table_counts(db_path, "marts")
    assert "fct_workouts" in marts
    assert all(count > 0 for count in marts.values()), marts
    served = {entry["path"] for entry in sandbox.request_log if entry["status"] == 200}
    assert "/developer/v2/cycle" in served

    # Lineage, from the OpenLineage events of both runs (file transport): the extract-load task wrote the raw
    # tables, one per dbt source; the staging models read them; a mart read what it depends on in dbt's graph
    # (staging among it) and wrote itself.
    events = lineage_events(lineage_file)
    warehouse = f"duckdb://{db_path}"
    manifest = json.loads(manifest_file(project, "dbt-duckdb").read_text())
    raw_tables = {(warehouse, f"whoop.raw.{source['name']}") for source in manifest["sources"].values()}
    extract_load = events[f"{DAG_ID}.{EL_TASK}"]
    assert datasets(extract_load, "outputs") == raw_tables
    # A model's task builds it, then its data tests read it: its inputs are what it selects from, and itself.
    staging = events[f"{DAG_ID}.{model_task('stg_whoop__cycles', tasks)}"]
    assert datasets(staging, "outputs") == {(warehouse, "whoop.staging.stg_whoop__cycles")}
    assert datasets(staging, "inputs") == {
        *parent_tables(manifest, "stg_whoop__cycles", warehouse),
        *datasets(staging, "outputs"),
    }
    assert (warehouse, "whoop.raw.cycles") in datasets(staging, "inputs")
    # ... and the tests' outcomes ride on it as OpenLineage data quality assertions.
    (tested,) = [d for d in staging["inputs"] if d["name"] == "whoop.staging.stg_whoop__cycles"]
    assertions = tested["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert {a["assertion"] for a in assertions} >= {"not_null", "unique"}
    assert all(a["success"] for a in assertions), assertions
    mart = events[f"{DAG_ID}.{model_task('fct_daily_health', tasks)}"]
    assert datasets(mart, "outputs") == {(warehouse, "whoop.marts.fct_daily_health")}
    assert datasets(mart, "inputs") == {
        *parent_tables(manifest, "fct_daily_health", warehouse),
        *datasets(mart, "outputs"),
    }
    assert "staging" in {name.split(".")[1] for _, name in datasets(mart, "inputs")}
    # Whatever a model read from raw is a table the extract-load task wrote: one graph, not two.
    read_from_raw = {
        table
        for event in events.values()
        for table in datasets(event, "inputs")
        if table[1].split(".")[1] == "raw"
    }
    assert read_from_raw
    assert read_from_raw <= raw_tables
    # Airflow's assets: the raw tables (the extract-load task's outlets) and every mart the report's DAG
    # waits for were updated, so the report would now rebuild (its DAG stays paused here).
    updated = updated_assets(airflow_home)
    assert set(tasks[EL_TASK]["outlets"]) <= updated
    report_assets = report["dags"][REPORT_DAG]["schedule_assets"]
    assert any(uri.endswith("/whoop/marts/fct_daily_health") for uri in report_assets)
    assert set(report_assets) <= updated
