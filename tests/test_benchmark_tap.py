"""The tap's benchmark (tap-whoop/scripts/benchmark.py, its quick size) runs in the suite, so it keeps
working: it finishes, its backfill draws no 429, and its figures are printed to the test run's output. The
wall-time ratios depend on the machine and are read, not asserted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "tap-whoop" / "scripts" / "benchmark.py"


@pytest.mark.slow
def test_the_benchmark_runs_and_its_backfill_draws_no_429(capsys):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^\s+429 responses\s+0$", done.stdout, re.MULTILINE), done.stdout
    (pages,) = re.findall(r"^\s+pages\s+(\d+)", done.stdout, re.MULTILINE)
    assert int(pages) > 0, done.stdout
    with capsys.disabled():
        print(f"\nbenchmark.py --quick:\n{done.stdout}")
