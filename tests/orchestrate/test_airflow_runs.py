"""Real Airflow runs of the DuckDB variant of the schedule against the WHOOP sandbox, via `meltano invoke`.

`whoop-duckdb-manual` is `whoop-every-3h` with DuckDB in place of Snowflake (job whoop-duckdb), so one
`airflow dags test` exercises the generated DAG, the operator and the whole pipeline. Everything a run writes
(Airflow's home and metadata DB, Meltano's system DB, the DuckDB file, the token store, dbt's target) lives in
tmp_path.
"""

import os
import signal
import sqlite3
import subprocess
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "whoop-duckdb-manual"
TASK_ID = "tap-whoop_target-duckdb_dbt-duckdb_build"
STREAMS = ("cycles", "sleeps", "recoveries", "workouts", "profile", "body_measurement")
RUN_TIMEOUT = 420

pytestmark = pytest.mark.timeout(900)


@pytest.fixture
def sandbox(whoop_sandbox_factory):
    # Small and without rate limits: pacing has its own tests; here only the orchestration matters.
    return whoop_sandbox_factory(days=14, athletes=1, rate_limits=[])


@pytest.fixture
def pipeline_env(tmp_path, sandbox, airflow_env):
    """Airflow's environment plus the pipeline's settings, all pointed at the sandbox and tmp_path."""
    return airflow_env(
        REPO,
        MELTANO_SEND_ANONYMOUS_USAGE_STATS="false",
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


def invoke_airflow(meltano: Path, env: dict[str, str], *args: str) -> str:
    """`meltano invoke airflow ...` from the project root, as a user runs it; returns the combined output."""
    # Its own process group, so a timeout also ends Airflow and the pipeline it started, not just meltano.
    process = subprocess.Popen(
        [meltano, "invoke", "airflow", *args],
        cwd=REPO,
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


def test_dags_test_of_the_duckdb_schedule_lands_data(meltano, sandbox, pipeline_env, airflow_home, tmp_path):
    output = invoke_airflow(meltano, pipeline_env, "dags", "test", DAG_ID)

    assert f"DagRun Finished: dag_id={DAG_ID}" in output
    finished = next(line for line in output.splitlines() if "DagRun Finished" in line)
    assert "state=success" in finished
    assert "`meltano run tap-whoop target-duckdb dbt-duckdb:build` succeeded" in output
    # The task log relays every plugin's lines, tagged with the plugin's name.
    assert "[tap-whoop]" in output
    assert "[dbt-duckdb]" in output
    # Recorded in this test's own metadata DB (meltano passes AIRFLOW__DATABASE__SQL_ALCHEMY_CONN through).
    with sqlite3.connect(airflow_home / "airflow.db") as metadata:
        runs = metadata.execute("select state from dag_run where dag_id = ?", [DAG_ID]).fetchall()
    assert runs == [("success",)]

    db_path = tmp_path / "whoop.duckdb"
    raw = table_counts(db_path, "raw")
    assert set(STREAMS) <= set(raw)
    assert all(raw[stream] > 0 for stream in STREAMS), raw
    with duckdb.connect(str(db_path), read_only=True) as con:
        users = {row[0] for row in con.execute("select distinct user_id from raw.cycles").fetchall()}
    assert users == {sandbox.athletes[0].user_id}
    marts = table_counts(db_path, "marts")
    assert marts, "dbt built no marts"
    assert all(count > 0 for count in marts.values()), marts
    served = {entry["path"] for entry in sandbox.request_log if entry["status"] == 200}
    assert "/developer/v2/cycle" in served


def test_failing_tap_is_named_in_the_task_log(meltano, pipeline_env):
    # A refresh token WHOOP does not know (revoked, or rotated by a run that overlapped this one).
    env = {**pipeline_env, "TAP_WHOOP_REFRESH_TOKEN": "fake-revoked-refresh-token"}

    output = invoke_airflow(meltano, env, "tasks", "test", DAG_ID, TASK_ID)

    assert "Task failed with exception" in output
    assert "new_state=failed" in output
    summary = output[output.index("`meltano run tap-whoop target-duckdb dbt-duckdb:build` failed") :]
    assert "Failed block: Extractor failed" in summary
    assert "Failing plugin: tap-whoop" in summary
    error = next(line for line in summary.splitlines() if line.startswith("Error: "))
    assert len(error) > len("Error: ") + 10
    assert "fake-revoked-refresh-token" not in output


def test_failing_dbt_model_is_named_in_the_task_log(meltano, pipeline_env):
    # dbt reads its sources from a schema the loader never wrote: every staging model fails.
    env = {**pipeline_env, "WHOOP_RAW_SCHEMA": "no_such_schema"}

    output = invoke_airflow(meltano, env, "tasks", "test", DAG_ID, TASK_ID)

    assert "Task failed with exception" in output
    summary = output[output.index("`meltano run tap-whoop target-duckdb dbt-duckdb:build` failed") :]
    assert "Failing plugin: dbt-duckdb" in summary
    failing_models = [line for line in summary.splitlines() if line.startswith("  - dbt model stg_whoop__")]
    assert failing_models, summary
    assert all('"no_such_schema"' in line and "does not exist" in line for line in failing_models)
