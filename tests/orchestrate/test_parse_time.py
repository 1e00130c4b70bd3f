"""The parse-time benchmark runs and reports its figures (the 2 s goal is a benchmark, not a pass mark)."""

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_parse_time_is_measured_and_printed(meltano, airflow_env, repo_manifests):
    measured = subprocess.run(
        [meltano, "invoke", "airflow:parse-time", "--rounds", "2"],
        cwd=REPO,
        env=airflow_env(REPO),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert measured.returncode == 0, measured.stderr[-3000:]
    lines = measured.stdout.strip().splitlines()
    assert re.search(r"whoop-every-3h \(\d+ tasks\)", lines[0])
    assert re.search(r"whoop-duckdb-manual \(\d+ tasks\)", lines[0])
    figures = re.fullmatch(
        r"meltano_schedules\.py: median (\S+) s, min (\S+) s, max (\S+) s over 2 parses "
        r"\((under|OVER) the 2 s goal\); a DAG file of (\d+) empty tasks: median (\S+) s; ratio (\S+)x",
        lines[-1],
    )
    assert figures, lines[-1]
    median, low, high = (float(figures[number]) for number in (1, 2, 3))
    assert 0 < low <= median <= high
    assert figures[4] == ("under" if high < 2 else "OVER")
