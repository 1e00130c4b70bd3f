"""The dbt manifest the DAGs render from: a stale or missing one is refused with the command that fixes it."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "orchestrate" / "dags"))

import dbt_manifest
from dbt_manifest import StaleManifestError, current_manifest, project_fingerprint


@pytest.fixture
def dbt_project(tmp_path) -> Path:
    project = tmp_path / "transform"
    (project / "models" / "staging").mkdir(parents=True)
    (project / "dbt_project.yml").write_text("name: whoop\nprofile: whoop\n")
    (project / "models" / "staging" / "stg_a.sql").write_text("select 1 as id\n")
    return project


@pytest.fixture
def manifests(tmp_path, monkeypatch) -> Path:
    directory = tmp_path / "manifests"
    monkeypatch.setattr(dbt_manifest, "MANIFEST_DIR", directory)
    return directory


def record_build(manifests: Path, project: Path, plugin: str = "dbt-duckdb") -> Path:
    """What `dbt_manifest.py build` leaves behind, without running dbt."""
    (manifests / plugin).mkdir(parents=True)
    (manifests / plugin / "manifest.json").write_text(json.dumps({"metadata": {}, "nodes": {}}))
    build = {"plugin": plugin, "project_dir": str(project), "fingerprint": project_fingerprint(project)}
    (manifests / plugin / "build.json").write_text(json.dumps(build))
    return manifests / plugin / "manifest.json"


def test_the_fingerprint_follows_the_project_not_dbts_output(dbt_project):
    before = project_fingerprint(dbt_project)
    for written_by_dbt in (
        "target/manifest.json",
        "logs/dbt.log",
        "dbt_packages/x/dbt_project.yml",
        ".user.yml",
    ):
        (dbt_project / written_by_dbt).parent.mkdir(parents=True, exist_ok=True)
        (dbt_project / written_by_dbt).write_text("anything")
    assert project_fingerprint(dbt_project) == before

    (dbt_project / "models" / "staging" / "stg_a.sql").write_text("select 2 as id\n")
    changed = project_fingerprint(dbt_project)
    assert changed != before
    (dbt_project / "models" / "staging" / "stg_b.sql").write_text("select 1 as id\n")
    assert project_fingerprint(dbt_project) not in (before, changed)


def test_a_current_manifest_is_used(dbt_project, manifests):
    built = record_build(manifests, dbt_project)

    assert current_manifest("dbt-duckdb", dbt_project) == built


def test_a_missing_manifest_names_the_command_that_builds_it(dbt_project, manifests):
    with pytest.raises(StaleManifestError, match=r"No dbt manifest for dbt-duckdb .*make dbt-manifests"):
        current_manifest("dbt-duckdb", dbt_project)


def test_a_changed_model_makes_the_manifest_stale(dbt_project, manifests):
    record_build(manifests, dbt_project)
    (dbt_project / "models" / "staging" / "stg_a.sql").write_text("select 1 as id, 2 as other\n")

    with pytest.raises(StaleManifestError, match=r"stale .*make dbt-manifests.*build dbt-duckdb"):
        current_manifest("dbt-duckdb", dbt_project)


def test_a_manifest_of_another_project_is_stale(dbt_project, manifests, tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    record_build(manifests, other)

    with pytest.raises(StaleManifestError, match="stale"):
        current_manifest("dbt-duckdb", dbt_project)


def test_parse_placeholders_only_for_required_unset_variables(tmp_path, monkeypatch):
    (tmp_path / "profiles.yml").write_text(
        "whoop:\n  outputs:\n    snowflake:\n"
        "      account: \"{{ env_var('SNOWFLAKE_ACCOUNT') }}\"\n"
        "      user: \"{{ env_var( 'SNOWFLAKE_USER' ) }}\"\n"
        "      role: \"{{ env_var('SNOWFLAKE_ROLE', '') }}\"\n"
    )
    monkeypatch.setenv("SNOWFLAKE_USER", "loader")
    monkeypatch.delenv("SNOWFLAKE_ACCOUNT", raising=False)
    monkeypatch.delenv("SNOWFLAKE_ROLE", raising=False)

    env = dbt_manifest._parse_env(tmp_path)

    assert env["SNOWFLAKE_ACCOUNT"] == dbt_manifest.PARSE_PLACEHOLDER
    assert env["SNOWFLAKE_USER"] == "loader"
    assert "SNOWFLAKE_ROLE" not in env
