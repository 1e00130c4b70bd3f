"""Run with Airflow's python: parse a DAG folder with Airflow's DagBag and print the result as one JSON line.

The orchestrate tests assert on this report; it has to run inside the Airflow venv, which pytest does not.
"""

import json
import sys

from airflow.dag_processing.dagbag import DagBag


def describe(dag) -> dict:
    tasks = [
        {
            "task_id": task.task_id,
            "blocks": getattr(task, "blocks", None),
            "env": getattr(task, "env", None),
            "operator": type(task).__name__,
            "upstream": sorted(task.upstream_task_ids),
            "retries": task.retries,
            "retry_delay_s": task.retry_delay.total_seconds(),
            "execution_timeout_s": task.execution_timeout.total_seconds() if task.execution_timeout else None,
        }
        for task in dag.topological_sort()
    ]
    return {
        "schedule": dag.schedule if isinstance(dag.schedule, str | None) else repr(dag.schedule),
        "timetable": type(dag.timetable).__name__,
        "max_active_runs": dag.max_active_runs,
        "catchup": dag.catchup,
        "dagrun_timeout_s": dag.dagrun_timeout.total_seconds() if dag.dagrun_timeout else None,
        "tags": sorted(dag.tags),
        "fileloc": dag.fileloc,
        "tasks": tasks,
    }


bag = DagBag(dag_folder=sys.argv[1])
report = {
    "import_errors": dict(bag.import_errors),
    "dags": {dag_id: describe(dag) for dag_id, dag in bag.dags.items()},
}
print(json.dumps(report, default=str))
