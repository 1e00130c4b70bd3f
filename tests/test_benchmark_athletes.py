"""The many-athletes benchmark (tap-whoop/scripts/benchmark_athletes.py, its quick size) runs in the suite:
the figures that do not depend on the machine are checked, and its summary line (wall time against the floor
included) is printed to the test run's output. Here rather than in tap-whoop/tests, which make test-pythons
runs six times."""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "tap-whoop" / "scripts" / "benchmark_athletes.py"


@pytest.mark.slow
def test_calls_per_athlete_day_and_athletes_per_app(capsys, tmp_path):
    spec = importlib.util.spec_from_file_location("benchmark_athletes", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    benchmark = importlib.util.module_from_spec(spec)
    sys.modules["benchmark_athletes"] = benchmark
    spec.loader.exec_module(benchmark)

    logging.disable(logging.WARNING)
    try:
        with capsys.disabled():
            steady = benchmark.steady_state(5, 2, tmp_path)
            scaled = benchmark.scaled_run(8, tmp_path)
    finally:
        logging.disable(logging.NOTSET)
    # Steady state on the 3-hourly schedule, polling: four list calls per athlete per run, profile and body
    # once a week, a night's sleep signals once a day, so one app serves at least 300 athletes within
    # WHOOP's 10,000 calls a day.
    polling, webhooks = steady["polling"], steady["webhooks"]
    assert polling["max_list_calls_per_run"] == 4
    assert polling["snapshot_reads_seen"] <= 5  # each athlete's pair at most once in two days
    assert polling["calls_per_athlete_day"] <= 4 * benchmark.RUNS_PER_DAY + 2 + 1
    assert polling["athletes_served"] >= 300
    # With webhooks: cycles every run, a daily sweep of the other three, the night's signals: at most 13 calls
    # per athlete-day and 760 athletes per app; after a day of changes (some deliveries lost) both hold the
    # same data.
    assert webhooks["calls_per_athlete_day"] <= 13
    assert webhooks["athletes_served"] >= 760
    assert steady["same_data"]["equal"]
    assert steady["same_data"]["deletions"] > 0
    # The scaled run: no 429, and no more rate windows than its calls need (time in windows, not seconds,
    # so the machine's load cannot fail it); everyone's fresh data before the long history starts.
    assert scaled["429s"] == 0
    assert scaled["windows"] == scaled["windows_needed"]
    assert scaled["fresh_data_by"] <= scaled["long_history_from"]
    with capsys.disabled():
        print(f"\nbenchmark: {benchmark.summary_line(steady, scaled)}")
