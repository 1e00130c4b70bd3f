"""The task-log reader: a failed `meltano run` must say which plugin, stream or dbt model broke, and why.

The lines below have the shape `meltano --log-format=json run` prints (captured from meltano 4.4 runs of a
failing tap and of a failing `dbt build`), so these tests pin what the Airflow task log will show.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "orchestrate" / "dags"))

from meltano_run_log import MeltanoRunLog

PLUGIN_TYPES = {"tap-whoop": "extractors", "target-duckdb": "loaders", "dbt-duckdb": "utilities"}


def plugin_line(name, message):
    """One line of a plugin's stderr as meltano relays it."""
    return json.dumps(
        {
            "stdio": "stderr",
            "cmd_type": "elb" if name != "dbt-duckdb" else "command",
            "name": name,
            "event": message,
            "level": "info",
            "_logger": f"<_FixedFindCallerLogger meltano.plugin.stderr.{PLUGIN_TYPES[name]}.{name} (INFO)>",
        }
    )


def meltano_event(message, level="info", **fields):
    return json.dumps({"event": message, "level": level, **fields})


def feed(run_log, lines):
    return [run_log.feed(line + "\n") for line in lines]


def sdk_line(level, stream, message):
    """A Singer SDK console log line; stream loggers are named "<tap>.<stream>"."""
    return plugin_line(
        "tap-whoop", f"2026-11-25 22:30:00,000 | {level:8s} | tap-whoop.{stream:20s} | {message}"
    )


TAP_FAILURE = [
    meltano_event("Environment 'dev' is active"),
    sdk_line("INFO", "cycles", "Beginning sync of 'cycles' in incremental mode"),
    sdk_line("INFO", "sleeps", "Beginning sync of 'sleeps' in incremental mode"),
    plugin_line(
        "target-duckdb",
        "time=2026-11-25 22:30:01 name=target_duckdb level=INFO message=Loading 25 rows into 'raw.cycles'",
    ),
    sdk_line("ERROR", "sleeps", "Request failed: 401 Unauthorized"),
    plugin_line("tap-whoop", "Traceback (most recent call last):"),
    plugin_line("tap-whoop", '  File "/x/tap_whoop/client.py", line 90, in request'),
    plugin_line(
        "tap-whoop",
        "singer_sdk.exceptions.FatalAPIError: 401 Client Error: Unauthorized for path: "
        "/developer/v2/activity/sleep",
    ),
    meltano_event("Extractor failed", level="error"),
    meltano_event(
        "Block run completed",
        level="error",
        success=False,
        err="Extractor failed",
        exit_codes={"extractors": 1},
    ),
    meltano_event("Run completed", status="failure"),
]


def test_tap_failure_names_plugin_stream_and_error():
    run_log = MeltanoRunLog("tap-whoop target-duckdb")
    rendered = feed(run_log, TAP_FAILURE)
    summary = run_log.failure_summary(1)

    assert rendered[1].startswith("[tap-whoop] ")
    assert "Beginning sync of 'cycles'" in rendered[1]
    assert (
        rendered[-2]
        == "[meltano] ERROR: Block run completed err=Extractor failed exit_codes={'extractors': 1}"
    )
    lines = summary.splitlines()
    assert lines[0] == "`meltano run tap-whoop target-duckdb` failed with exit code 1."
    assert "Failed block: Extractor failed (exit codes {'extractors': 1})" in lines
    assert "Failing plugin: tap-whoop, stream 'sleeps'" in lines
    assert (
        "Error: singer_sdk.exceptions.FatalAPIError: 401 Client Error: Unauthorized for path: "
        "/developer/v2/activity/sleep"
    ) in lines
    # The loader did not fail: it is not blamed and its lines are not in the tail.
    assert "target-duckdb" not in summary.replace("`meltano run tap-whoop target-duckdb`", "")
    assert lines[-1].endswith("/developer/v2/activity/sleep")
    # Meltano's own "Extractor failed" error line is not repeated next to the identical block error.
    assert summary.count("Extractor failed") == 1


def test_a_tap_failure_ending_in_one_line_is_the_error():
    """tap-whoop ends a failure the user can fix in one "Error: ..." line, with no traceback."""
    message = "Could not reach WHOOP's token endpoint https://x.test/token (ConnectionError). Try later."
    run_log = MeltanoRunLog("tap-whoop target-duckdb")
    feed(
        run_log,
        [
            sdk_line("INFO", "cycles", "Beginning sync of 'cycles' in incremental mode"),
            sdk_line("ERROR", "cycles", "An unhandled error occurred while syncing 'cycles'"),
            plugin_line("tap-whoop", f"Error: {message}"),
            meltano_event("Run completed", status="failure"),
        ],
    )
    lines = run_log.failure_summary(1).splitlines()
    assert "Failing plugin: tap-whoop, stream 'cycles'" in lines
    assert f"Error: {message}" in lines


def test_stream_is_the_last_one_started_when_the_tap_logs_no_error_line():
    run_log = MeltanoRunLog("tap-whoop target-duckdb")
    feed(run_log, [line for line in TAP_FAILURE if "Request failed" not in line])
    assert "Failing plugin: tap-whoop, stream 'sleeps'" in run_log.failure_summary(1).splitlines()


ESC = "\x1b"
DBT_FAILURE = [
    plugin_line("dbt-duckdb", f"{ESC}[0m22:25:00  Running with dbt=1.11.16"),
    plugin_line(
        "dbt-duckdb",
        f"{ESC}[0m22:25:00  2 of 3 ERROR creating sql view model main.stg_whoop__cycles ... "
        f"[{ESC}[31mERROR{ESC}[0m in 0.02s]",
    ),
    plugin_line(
        "dbt-duckdb",
        f"{ESC}[0m22:25:00  3 of 3 FAIL 1 accepted_values_fct_daily_state ... "
        f"[{ESC}[31mFAIL 1{ESC}[0m in 0.03s]",
    ),
    plugin_line(
        "dbt-duckdb",
        f"{ESC}[0m22:25:00  {ESC}[31mCompleted with 2 errors, 0 partial successes, and 0 warnings:{ESC}[0m",
    ),
    plugin_line("dbt-duckdb", f"{ESC}[0m22:25:00"),
    plugin_line(
        "dbt-duckdb",
        f"{ESC}[0m22:25:00  {ESC}[31mFailure in model stg_whoop__cycles "
        f"(models/staging/stg_whoop__cycles.sql){ESC}[0m",
    ),
    plugin_line(
        "dbt-duckdb",
        f"{ESC}[0m22:25:00    Runtime Error in model stg_whoop__cycles "
        "(models/staging/stg_whoop__cycles.sql)",
    ),
    plugin_line("dbt-duckdb", "  Catalog Error: Table with name cycles does not exist!"),
    plugin_line("dbt-duckdb", '  Did you mean "information_schema.tables"?'),
    plugin_line("dbt-duckdb", "  "),
    plugin_line(
        "dbt-duckdb",
        f"{ESC}[0m22:25:00    compiled code at target/compiled/whoop/models/staging/stg_whoop__cycles.sql",
    ),
    plugin_line("dbt-duckdb", f"{ESC}[0m22:25:00"),
    plugin_line(
        "dbt-duckdb",
        f"{ESC}[0m22:25:00  {ESC}[31mFailure in test accepted_values_fct_daily_state "
        f"(models/marts/_marts.yml){ESC}[0m",
    ),
    plugin_line("dbt-duckdb", f"{ESC}[0m22:25:00    Got 1 result, configured to fail if != 0"),
    plugin_line("dbt-duckdb", f"{ESC}[0m22:25:00"),
    plugin_line("dbt-duckdb", f"{ESC}[0m22:25:00  Done. PASS=1 WARN=0 ERROR=2 SKIP=0 NO-OP=0 TOTAL=3"),
    meltano_event(
        "Block run completed",
        level="error",
        success=False,
        err="`dbt-duckdb build` failed with exit code: 1",
        exit_codes={},
    ),
    meltano_event("Run completed", status="failure"),
]


def test_dbt_failure_names_each_failing_model_and_test_once():
    run_log = MeltanoRunLog("dbt-duckdb:build")
    rendered = feed(run_log, DBT_FAILURE)
    summary = run_log.failure_summary(1)
    lines = summary.splitlines()

    assert ESC not in "".join(rendered)
    assert ESC not in summary
    assert "Failed block: `dbt-duckdb build` failed with exit code: 1" in lines
    assert "Failing plugin: dbt-duckdb" in lines
    assert "Failing dbt nodes (2):" in lines
    assert (
        "  - dbt model stg_whoop__cycles (models/staging/stg_whoop__cycles.sql): Runtime Error: "
        'Catalog Error: Table with name cycles does not exist! Did you mean "information_schema.tables"?'
    ) in lines
    assert (
        "  - dbt test accepted_values_fct_daily_state (models/marts/_marts.yml): Failure: "
        "Got 1 result, configured to fail if != 0"
    ) in lines


def test_dbt_unit_test_failure_keeps_the_model_under_test_as_detail():
    run_log = MeltanoRunLog("dbt-duckdb:build")
    feed(
        run_log,
        [
            plugin_line(
                "dbt-duckdb",
                "22:48:30  Failure in unit_test test_cycles_newest_wins (models/staging/_unit_tests.yml)",
            ),
            plugin_line(
                "dbt-duckdb",
                "22:48:30    Compilation Error in model cycles (models/staging/_unit_tests.yml)",
            ),
            plugin_line("dbt-duckdb", "  Not able to get columns for unit test 'cycles'"),
            plugin_line("dbt-duckdb", "22:48:30"),
        ],
    )
    lines = run_log.failure_summary(1).splitlines()
    assert lines[lines.index("Failing dbt nodes (1):") + 1] == (
        "  - dbt unit_test test_cycles_newest_wins (models/staging/_unit_tests.yml): Failure: "
        "Compilation Error in model cycles (models/staging/_unit_tests.yml) "
        "Not able to get columns for unit test 'cycles'"
    )


def test_loader_failure_blames_the_loader():
    run_log = MeltanoRunLog("tap-whoop target-duckdb")
    feed(
        run_log,
        [
            sdk_line("INFO", "cycles", "Beginning sync of 'cycles' in incremental mode"),
            plugin_line("target-duckdb", "Traceback (most recent call last):"),
            plugin_line(
                "target-duckdb", 'duckdb.duckdb.ConstraintException: Constraint Error: Duplicate key "id: 7"'
            ),
            meltano_event(
                "Block run completed",
                level="error",
                success=False,
                err="Loader failed",
                exit_codes={"loaders": 1},
            ),
        ],
    )
    lines = run_log.failure_summary(1).splitlines()
    assert "Failing plugin: target-duckdb" in lines
    assert 'Error: duckdb.duckdb.ConstraintException: Constraint Error: Duplicate key "id: 7"' in lines
    assert not any(line.startswith("Failing plugin: tap-whoop") for line in lines)


def test_output_that_is_not_meltano_json_is_kept_and_summarised():
    # E.g. meltano failing before its logging is configured (bad meltano.yml): plain text, no plugin.
    run_log = MeltanoRunLog("whoop-duckdb")
    rendered = feed(
        run_log, ["Traceback (most recent call last):", "ScannerError: mapping values are not allowed here"]
    )
    assert rendered == [
        "Traceback (most recent call last):",
        "ScannerError: mapping values are not allowed here",
    ]
    summary = run_log.failure_summary(2)
    assert summary.splitlines()[0] == "`meltano run whoop-duckdb` failed with exit code 2."
    assert summary.splitlines()[-1] == "  | ScannerError: mapping values are not allowed here"
