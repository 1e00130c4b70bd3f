"""`make report` is `meltano invoke evidence:build`: the Meltano environment picks the warehouse (dev: DuckDB,
prod: Snowflake), and a missing warehouse or credential ends in one line naming the fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
MELTANO = Path(sys.executable).parent / "meltano"
FOREIGN = ("SNOWFLAKE_", "WHOOP_", "MELTANO_", "TAP_WHOOP_", "EVIDENCE_")


def invoke(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN)}
    clean.update(
        MELTANO_SEND_ANONYMOUS_USAGE_STATS="false",
        MELTANO_DATABASE_URI=f"sqlite:///{tmp_path / 'meltano.db'}",
        **env,
    )
    return subprocess.run(
        [str(MELTANO), *args, "invoke", "evidence:build"],
        cwd=REPO,
        env=clean,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_dev_reads_the_duckdb_file_and_says_when_it_is_missing(tmp_path):
    missing = tmp_path / "nowhere.duckdb"
    result = invoke(tmp_path, WHOOP_DUCKDB_PATH=str(missing))
    assert result.returncode != 0
    assert "warehouse duckdb" in result.stdout
    assert f"whoop-report: no DuckDB warehouse at {missing}: run the pipeline first" in result.stderr
    assert "Traceback" not in result.stderr


def test_prod_reads_snowflake_and_says_which_credentials_are_missing(tmp_path):
    result = invoke(tmp_path, "--environment=prod")
    assert result.returncode != 0
    assert "warehouse snowflake" in result.stdout
    assert "whoop-report: SNOWFLAKE_ACCOUNT and SNOWFLAKE_USER must be set" in result.stderr
    assert "Traceback" not in result.stderr
