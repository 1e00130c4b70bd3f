"""The dbt project follows dbt's style guide (file names, CTE shape), and nothing test-only lives in it.

Static checks over the files: no warehouse, no dbt run. SQLFluff (`make lint`) checks the SQL itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TRANSFORM = REPO / "transform"
BUILD_OUTPUT = ("target", "logs", "dbt_packages")
MODELS = sorted((TRANSFORM / "models").rglob("*.sql"))
# Macro (and generic test) files of the product and of the tests' dbt overlay.
MACRO_FILES = sorted(
    [
        *(TRANSFORM / "macros").rglob("*.sql"),
        *(TRANSFORM / "tests" / "generic").rglob("*.sql"),
        *(REPO / "tests" / "fakesnow_support" / "dbt_macros").rglob("*.sql"),
    ]
)
JINJA_COMMENT = re.compile(r"\{#.*?#\}", re.S)
# transform/.sqlfluff's max_line_length; SQLFluff measures rendered SQL, so the source lines are checked here.
MAX_LINE_LENGTH = 120


def source_files() -> list[Path]:
    return [
        path
        for path in (TRANSFORM / "models").rglob("*.yml")
        if "sources" in (yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    ]


def test_sources_are_declared_in_a_file_named_after_their_folder():
    files = source_files()
    assert files
    for path in files:
        assert path.name == f"_{path.parent.name}__sources.yml", path.relative_to(REPO)
        assert (path.parent / f"_{path.parent.name}__models.yml").exists(), path.relative_to(REPO)


@pytest.mark.parametrize("path", MACRO_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_a_macro_file_is_named_after_its_macro(path: Path):
    """One macro per file (with its adapter implementations `<adapter>__<name>`), file name = macro name."""
    names = re.findall(r"\{%-?\s*(?:macro|test)\s+(\w+)\s*\(", JINJA_COMMENT.sub("", path.read_text()))
    assert path.stem in names, f"{path.name} defines {names}"
    assert all(name == path.stem or name.endswith(f"__{path.stem}") for name in names), names


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_a_model_ends_in_select_star_from_its_final_cte(path: Path):
    sql = JINJA_COMMENT.sub("", path.read_text(encoding="utf-8"))
    last = re.search(r"select \* from (\w+)\s*\Z", sql)
    assert last, f"{path.name} does not end in `select * from <final cte>`"
    assert re.search(rf"^{last[1]} as \($", sql, re.M), f"{path.name}: {last[1]} is not one of its CTEs"


@pytest.mark.parametrize("path", [*MODELS, *MACRO_FILES], ids=lambda p: str(p.relative_to(REPO)))
def test_sql_source_lines_fit_the_line_length(path: Path):
    lines = path.read_text(encoding="utf-8").splitlines()
    too_long = [number for number, line in enumerate(lines, 1) if len(line) > MAX_LINE_LENGTH]
    assert not too_long, f"{path.name}: lines {too_long} are longer than {MAX_LINE_LENGTH}"


def test_sqlfluff_line_length_is_the_one_checked_here():
    assert f"max_line_length = {MAX_LINE_LENGTH}\n" in (TRANSFORM / ".sqlfluff").read_text(encoding="utf-8")


def test_the_product_project_never_mentions_fakesnow():
    """The fakesnow workarounds are injected by the tests (tests/fakesnow_support/dbt_project.py)."""
    mentions = [
        str(path.relative_to(REPO))
        for path in TRANSFORM.rglob("*")
        if path.is_file()
        and path.relative_to(TRANSFORM).parts[0] not in BUILD_OUTPUT
        and "fakesnow" in path.read_text(encoding="utf-8", errors="replace").lower()
    ]
    assert not mentions


def test_model_and_unit_test_names_fit_postgres_identifiers():
    """dbt names relations after models and unit tests; PostgreSQL refuses identifiers over 63 bytes."""
    names = [path.stem for path in MODELS]
    for path in (TRANSFORM / "models").rglob("*.yml"):
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        names += [test["name"] for test in document.get("unit_tests", [])]
    assert len(names) > len(MODELS), "no unit tests found: the check would be vacuous"
    too_long = [name for name in names if len(name.encode()) > 63]
    assert not too_long, too_long
