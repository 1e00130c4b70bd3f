"""The dbt project as the fakesnow tests run it: transform/ copied, plus the test-only macros of dbt_macros/.

fakesnow lacks a few things dbt-snowflake relies on (temporary relations in the target database, unqualified
column names in a MERGE insert clause, writes to two DuckDB databases in one transaction); each macro in
dbt_macros/ overrides the dbt-snowflake macro of its name to work around one of them. Root-project macros take
precedence over an adapter's, so the copy gets them in its own macro path; transform/ itself never has them,
and real Snowflake receives dbt-snowflake's SQL unchanged (tests/transform/test_dbt_fakesnow.py compiles both
projects to prove it).
"""

from __future__ import annotations

import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRANSFORM = HERE.parents[1] / "transform"
MACROS = HERE / "dbt_macros"
# Inside the copy's own macro path (`macro-paths: ["macros"]`), so its dbt_project.yml stays as it is.
MACRO_DIR = Path("macros") / "fakesnow"


def copy_project(dest: Path, *, fakesnow: bool = True) -> Path:
    """Copy transform/ (without build output) to `dest`, which must not exist, and return it.

    With fakesnow=False the copy is the product project unchanged (for tests that add a model to it)."""
    build_output = shutil.ignore_patterns("target", "logs", "dbt_packages", ".user.yml")
    shutil.copytree(TRANSFORM, dest, ignore=build_output)
    if fakesnow:
        shutil.copytree(MACROS, dest / MACRO_DIR)
    return dest
