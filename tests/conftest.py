"""Root of the repository-level tests; puts `tests/` on the import path for the shared helpers beside it.

Everything under e2e/ (the pipeline through Meltano) and orchestrate/ (Airflow) is slow by nature, new files
included, so those directories are marked here rather than file by file."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
MARKED_DIRECTORIES = {
    HERE / "e2e": (pytest.mark.e2e, pytest.mark.slow),
    HERE / "orchestrate": (pytest.mark.slow,),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for directory, marks in MARKED_DIRECTORIES.items():
            if item.path.is_relative_to(directory):
                for mark in marks:
                    item.add_marker(mark)
