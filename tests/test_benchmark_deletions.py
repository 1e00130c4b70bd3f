"""The deletions benchmark (tap-whoop/scripts/benchmark_deletions.py) runs in the suite: its figures are
checked, and its summary line is printed to the test run's output."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "tap-whoop" / "scripts" / "benchmark_deletions.py"


@pytest.mark.slow
def test_api_calls_per_incremental_run_with_and_without_webhooks(capsys):
    spec = importlib.util.spec_from_file_location("benchmark_deletions", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    benchmark = importlib.util.module_from_spec(spec)
    sys.modules["benchmark_deletions"] = benchmark
    spec.loader.exec_module(benchmark)

    results = benchmark.measure()
    plain, hooked = results["without webhooks"], results["with webhooks"]
    # Steady state: only the list pages and the profile/body calls, whichever way.
    assert plain.steady.lookups == hooked.steady.lookups == 0
    assert plain.steady.total == hooked.steady.total
    # Confirmations only for suspects: the workout and the sleep inside the window (the recovery goes with its
    # sleep); the 40-day-old sleep and the edit 30 days ago are beyond reconciliation.
    assert plain.after_changes.lookups == 2
    assert (plain.deletions_caught, plain.old_edit_landed) == (3, False)
    # Webhooks announce every deletion (no confirmation needed) and make the run fetch the old edit by id.
    assert hooked.after_changes.lookups == 1
    assert (hooked.deletions_caught, hooked.deletions_made, hooked.old_edit_landed) == (5, 5, True)
    assert plain.after_changes.lists == hooked.after_changes.lists == plain.steady.lists
    with capsys.disabled():
        print(f"\nbenchmark: {benchmark.summary_line(results)}")
