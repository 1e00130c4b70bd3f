"""Run with Airflow's python: parse a DAG folder with Airflow's DagBag and print the result as one JSON line.

The orchestrate tests assert on this report; it has to run inside the Airflow venv, which pytest does not.
"""

import json
import sys

from airflow.dag_processing.dagbag import DagBag


def describe_task(task) -> dict:
    profile = getattr(task, "profile_config", None)
    node = (getattr(task, "extra_context", None) or {}).get("dbt_node_config") or {}
    return {
        "task_id": task.task_id,
        "blocks": getattr(task, "blocks", None),
        "env": getattr(task, "env", None),
        "operator": type(task).__name__,
        "upstream": sorted(task.upstream_task_ids),
        "downstream": sorted(task.downstream_task_ids),
        "retries": task.retries,
        "retry_delay_s": task.retry_delay.total_seconds(),
        "execution_timeout_s": task.execution_timeout.total_seconds() if task.execution_timeout else None,
        "trigger_rule": str(task.trigger_rule),
        "priority_weight": task.priority_weight,
        # Asset URIs (Cosmos adds its per-model assets when the task runs, through an alias).
        "inlets": [getattr(inlet, "uri", None) for inlet in task.inlets],
        "outlets": [getattr(outlet, "uri", None) for outlet in task.outlets],
        # Cosmos operators only.
        "dbt_command": getattr(task, "base_cmd", None),
        "dbt_select": getattr(task, "select", None),
        "dbt_exclude": getattr(task, "exclude", None),
        "dbt_node": node.get("unique_id"),
        "emit_datasets": getattr(task, "emit_datasets", None),
        "dbt_executable": getattr(task, "dbt_executable_path", None),
        "dbt_project_dir": str(task.project_dir) if hasattr(task, "project_dir") else None,
        "dbt_target": profile.target_name if profile else None,
        "dbt_profiles_yml": str(profile.profiles_yml_filepath) if profile else None,
    }


def schedule_assets(dag) -> list[str] | None:
    """The URIs of the assets an asset-scheduled DAG waits for (all of them: `schedule=[...]`)."""
    condition = getattr(dag.timetable, "asset_condition", None)
    if condition is None:
        return None
    return sorted(asset.uri for asset in condition.objects)


def describe(dag) -> dict:
    return {
        "schedule": dag.schedule if isinstance(dag.schedule, str | None) else repr(dag.schedule),
        "timetable": type(dag.timetable).__name__,
        "schedule_assets": schedule_assets(dag),
        "max_active_runs": dag.max_active_runs,
        "max_active_tasks": dag.max_active_tasks,
        "catchup": dag.catchup,
        "dagrun_timeout_s": dag.dagrun_timeout.total_seconds() if dag.dagrun_timeout else None,
        "tags": sorted(dag.tags),
        "fileloc": dag.fileloc,
        "doc_md": dag.doc_md,
        "tasks": [describe_task(task) for task in dag.topological_sort()],
    }


bag = DagBag(dag_folder=sys.argv[1])
report = {
    "import_errors": dict(bag.import_errors),
    "dags": {dag_id: describe(dag) for dag_id, dag in bag.dags.items()},
}
print(json.dumps(report, default=str))
