"""Measure how long Airflow takes to parse the DAG folder, and print the figures (a benchmark, not a test).

Run with Airflow's Python, in Airflow's environment: `make dag-parse-time`, i.e.
`meltano invoke airflow:parse-time [--rounds N]`.

Each round is one parse as Airflow's DAG processor does it: a fresh process that already holds Airflow's
parsing machinery imports the DAG file (`DagBag`), so the figure includes importing Cosmos and rendering
every DAG from the project description and dbt manifests `make dbt-manifests` writes (parsing never
starts Meltano; the first, warm-up round is reported apart). Side by side, in the same rounds, the same
parse of a DAG file with as many empty tasks: the ratio says what the project description, the manifests
and Cosmos cost beyond Airflow's own price for those tasks, whatever the machine's load. The goal is
under 2 s per parse.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

GOAL_S = 2.0


def baseline_dag(tasks: int) -> str:
    """A DAG file with as many (empty) tasks as ours, chained: Airflow's own cost for that many tasks."""
    return textwrap.dedent(f"""\
        # The baseline airflow DAG file: {tasks} empty tasks.
        from datetime import datetime

        from airflow.providers.standard.operators.empty import EmptyOperator
        from airflow.sdk import DAG, chain

        with DAG("baseline", start_date=datetime(2024, 1, 1), schedule=None) as dag:
            chain(*[EmptyOperator(task_id=f"task_{{number}}") for number in range({tasks})])
        """)


# One parse in a fresh process: import DagBag (the DAG processor has it already), then time the parse.
_ONE_PARSE = textwrap.dedent("""\
    import json, sys, time
    from airflow.dag_processing.dagbag import DagBag
    started = time.perf_counter()
    bag = DagBag(dag_folder=sys.argv[1])
    elapsed = time.perf_counter() - started
    print(json.dumps({
        "seconds": elapsed,
        "files": {stat.file: stat.duration.total_seconds() for stat in bag.dagbag_stats},
        "dags": {dag_id: len(dag.tasks) for dag_id, dag in bag.dags.items()},
        "errors": {path: str(error).splitlines()[-1] for path, error in bag.import_errors.items()},
    }))
    """)


def parse_once(folder: Path) -> dict:
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-c", _ONE_PARSE, str(folder)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"parsing {folder} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="parses measured (after one warm-up)")
    parser.add_argument("--dags-folder", type=Path, default=Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as baseline_dir:
        first = parse_once(args.dags_folder)
        if first["errors"]:
            print(json.dumps(first["errors"], indent=2), file=sys.stderr)
            sys.exit("the DAG folder has import errors")
        tasks = sum(first["dags"].values())
        (Path(baseline_dir) / "baseline_dag.py").write_text(baseline_dag(tasks))
        ours, baseline = [], []
        for _ in range(args.rounds):
            ours.append(parse_once(args.dags_folder))
            baseline.append(parse_once(Path(baseline_dir)))

    print(f"DAG folder {args.dags_folder}: {', '.join(f'{d} ({n} tasks)' for d, n in first['dags'].items())}")
    print(f"first parse (cold file caches): {first['seconds']:.2f} s")
    for file_name in first["files"]:
        times = [parsed["files"][file_name] for parsed in ours]
        base = statistics.median(parsed["seconds"] for parsed in baseline)
        median = statistics.median(times)
        verdict = "under" if max(times) < GOAL_S else "OVER"
        print(
            f"{Path(file_name).name}: median {median:.2f} s, min {min(times):.2f} s, "
            f"max {max(times):.2f} s over {len(times)} parses ({verdict} the {GOAL_S:.0f} s goal); "
            f"a DAG file of {tasks} empty tasks: median {base:.2f} s; ratio {median / base:.1f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
