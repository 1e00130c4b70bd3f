"""The sleep signals benchmark (tap-whoop/scripts/benchmark_sleep_signals.py, its quick size) runs in the
suite: tap-whoop piped into Meltano's target-duckdb at 6 s and 1 s sampling. What does not depend on the
machine is checked (no 429, every fetched night loaded with all its samples, a JSON column); the figures (wall
time against the rate-limit floor, samples a second, peak RSS, bytes per sample) are printed to the test run's
output."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "tap-whoop" / "scripts" / "benchmark_sleep_signals.py"


@pytest.mark.slow
def test_the_signals_backfill_reaches_duckdb_whole(capsys):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert re.findall(r"^\s+429 responses\s+(\d+)$", out, re.MULTILINE) == ["0", "0"], out
    calls = re.findall(
        r"^\s+API calls\s+\d+\s+\((\d+) sleep streams, (\d+) sleeps in (\d+) rows loaded\)", out, re.MULTILINE
    )
    assert len(calls) == 2, out
    assert all(int(streams) == int(sleeps) > 0 for streams, sleeps, _ in calls), out
    # At 1 s a night is more than one record's samples (tap_whoop.streams.signals.SAMPLES_PER_RECORD).
    assert int(calls[1][2]) > int(calls[1][1]), out
    assert "MISMATCH" not in out
    assert out.count("stream JSON") == 2, out
    with capsys.disabled():
        print(f"\nbenchmark_sleep_signals.py --quick:\n{out}")
