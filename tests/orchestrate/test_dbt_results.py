"""The dbt results reader: a failed dbt task must name each failing node, its file and dbt's error.

The JSON below has the shape dbt 1.11 writes (run_results.json of `dbt run` / `dbt test`, sources.json of
`dbt source freshness`, and the manifest's node entries), captured from runs of this project and trimmed.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "orchestrate" / "dags"))

from dbt_results import failure_summary, read_results

MANIFEST = {
    "nodes": {
        "model.whoop.stg_whoop__workouts": {
            "name": "stg_whoop__workouts",
            "resource_type": "model",
            "original_file_path": "models/staging/whoop/stg_whoop__workouts.sql",
        },
        "model.whoop.stg_whoop__cycles": {
            "name": "stg_whoop__cycles",
            "resource_type": "model",
            "original_file_path": "models/staging/whoop/stg_whoop__cycles.sql",
        },
        "test.whoop.not_null_stg_whoop__cycles_cycle_id.1a2b3c": {
            "name": "not_null_stg_whoop__cycles_cycle_id",
            "resource_type": "test",
            "original_file_path": "models/staging/whoop/_whoop__models.yml",
        },
    },
    "sources": {
        "source.whoop.whoop.workouts": {
            "source_name": "whoop",
            "name": "workouts",
            "resource_type": "source",
            "original_file_path": "models/staging/whoop/_whoop__sources.yml",
        }
    },
    "unit_tests": {},
}
BINDER_ERROR = (
    "Runtime Error in model stg_whoop__workouts (models/staging/whoop/stg_whoop__workouts.sql)\n"
    '  Binder Error: Referenced column "no_such_column" not found in FROM clause!\n'
    '  Candidate bindings: "score__altitude_change_meter", "score__kilojoule"\n  \n'
    '  LINE 5:     select no_such_column from "w"."raw"."workouts"\n                     ^'
)


def write_target(tmp_path, **files) -> Path:
    target = tmp_path / "target"
    target.mkdir(parents=True)
    (target / "manifest.json").write_text(json.dumps(MANIFEST))
    for name, content in files.items():
        (target / f"{name}.json").write_text(json.dumps(content))
    return target


def result(unique_id, status, message=None, **extra):
    return {"unique_id": unique_id, "status": status, "message": message, "execution_time": 1.25, **extra}


def test_a_failed_model_is_named_with_its_file_and_dbts_error(tmp_path):
    target = write_target(
        tmp_path,
        run_results={
            "results": [
                result("model.whoop.stg_whoop__workouts", "error", BINDER_ERROR),
                result("model.whoop.stg_whoop__cycles", "success", "OK"),
            ]
        },
    )

    results = read_results(target)
    summary = failure_summary("dbt run --select stg_whoop__workouts", results)

    assert [(r.name, r.status) for r in results] == [
        ("stg_whoop__workouts", "error"),
        ("stg_whoop__cycles", "success"),
    ]
    assert (
        results[1].describe()
        == "dbt model stg_whoop__cycles (models/staging/whoop/stg_whoop__cycles.sql): success"
    )
    lines = summary.splitlines()
    assert (
        lines[0]
        == "`dbt run --select stg_whoop__workouts` failed: 1 of 2 dbt node(s) failed (from dbt's results):"
    )
    assert lines[1].startswith(
        "  - dbt model stg_whoop__workouts (models/staging/whoop/stg_whoop__workouts.sql): error: Runtime"
    )
    # dbt's multi-line error on one line, whitespace collapsed.
    assert 'Binder Error: Referenced column "no_such_column" not found in FROM clause!' in lines[1]
    assert len(lines) == 2


def test_failing_tests_fail_and_passing_ones_do_not(tmp_path):
    failing = result(
        "test.whoop.not_null_stg_whoop__cycles_cycle_id.1a2b3c",
        "fail",
        "Got 3 results, configured to fail if != 0",
        failures=3,
    )
    target = write_target(tmp_path, run_results={"results": [failing]})

    (only,) = read_results(target)

    assert only.failed
    assert only.describe() == (
        "dbt test not_null_stg_whoop__cycles_cycle_id (models/staging/whoop/_whoop__models.yml): fail: "
        "Got 3 results, configured to fail if != 0"
    )
    passing = write_target(
        tmp_path / "ok", run_results={"results": [{**failing, "status": "pass", "message": None}]}
    )
    assert failure_summary("dbt test", read_results(passing)) is None


def test_stale_source_says_how_old_and_the_limit(tmp_path):
    stale = {
        "unique_id": "source.whoop.whoop.workouts",
        "max_loaded_at": "2026-11-29T08:00:00+00:00",
        "max_loaded_at_time_ago_in_s": 30 * 3600.0,
        "status": "error",
        "criteria": {
            "warn_after": {"count": 6, "period": "hour"},
            "error_after": {"count": 24, "period": "hour"},
        },
        "execution_time": 0.09,
    }
    target = write_target(tmp_path, sources={"results": [stale, {**stale, "status": "warn"}]})

    error, warning = read_results(target)

    assert error.failed
    assert error.describe() == (
        "dbt source whoop.workouts (models/staging/whoop/_whoop__sources.yml): error: "
        "last loaded 30.0 h ago (at 2026-11-29T08:00:00+00:00), limit 24 hour"
    )
    assert not warning.failed
    assert warning.describe().endswith(
        "warn: last loaded 30.0 h ago (at 2026-11-29T08:00:00+00:00), limit 6 hour"
    )


def test_no_results_when_dbt_recorded_none(tmp_path):
    # dbt stops before running anything (a bad profile, a parse error): its console output says why.
    assert read_results(write_target(tmp_path)) is None
    assert read_results(tmp_path / "missing") is None


def test_a_node_missing_from_the_manifest_is_still_named(tmp_path):
    target = write_target(
        tmp_path, run_results={"results": [result("model.whoop.brand_new", "error", "boom")]}
    )

    (only,) = read_results(target)

    assert only.describe() == "dbt model brand_new: error: boom"
