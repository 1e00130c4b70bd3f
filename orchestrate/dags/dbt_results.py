"""Read what one dbt command wrote to its target directory and say what failed, node by node.

dbt records every node's outcome in `run_results.json` (`source freshness`: `sources.json`) and every node's
file in `manifest.json`; the task log and the task's error are built from those, never from dbt's console
text. Kept free of Airflow imports so it can be unit-tested anywhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FAILED = frozenset({"error", "fail", "runtime error"})
MESSAGE_CHARS = 600


@dataclass(frozen=True)
class NodeResult:
    """One node's outcome: `dbt model stg_whoop__cycles (models/...sql): error: <dbt's message>`."""

    resource: str
    name: str
    path: str | None
    status: str
    message: str
    seconds: float | None

    @property
    def failed(self) -> bool:
        return self.status in FAILED

    def describe(self) -> str:
        where = f" ({self.path})" if self.path else ""
        said = f": {self.message}" if self.message else ""
        return f"dbt {self.resource} {self.name}{where}: {self.status}{said}"


def _one_line(text: Any) -> str:
    line = " ".join(str(text or "").split())
    return line if len(line) <= MESSAGE_CHARS else line[: MESSAGE_CHARS - 1] + "…"


def _load(path: Path) -> dict[str, Any] | None:
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def _node(manifest: dict[str, Any], unique_id: str) -> dict[str, Any]:
    for section in ("nodes", "sources", "unit_tests", "exposures"):
        if unique_id in (manifest.get(section) or {}):
            return manifest[section][unique_id]
    return {}


def _freshness_message(result: dict[str, Any]) -> str:
    if result.get("error"):
        return _one_line(result["error"])
    ago = result.get("max_loaded_at_time_ago_in_s")
    criteria = result.get("criteria") or {}
    limit = criteria.get("error_after") if result.get("status") == "error" else criteria.get("warn_after")
    if ago is None:
        return ""
    text = f"last loaded {float(ago) / 3600:.1f} h ago (at {result.get('max_loaded_at')})"
    if limit and limit.get("count"):
        text += f", limit {limit['count']} {limit['period']}"
    return text


def read_results(target_dir: Path) -> list[NodeResult] | None:
    """The node results of the dbt command that wrote `target_dir`; None when dbt recorded none."""
    manifest = _load(target_dir / "manifest.json") or {}
    results: list[NodeResult] = []
    recorded_any = False
    # `source freshness` writes sources.json, every other command run_results.json.
    for file_name in ("run_results.json", "sources.json"):
        recorded = _load(target_dir / file_name)
        if recorded is None:
            continue
        recorded_any = True
        for result in recorded.get("results") or []:
            unique_id = str(result.get("unique_id", ""))
            node = _node(manifest, unique_id)
            resource = unique_id.split(".", 1)[0] or "node"
            if resource == "source":
                name = f"{node.get('source_name', '?')}.{node.get('name', unique_id.rsplit('.', 1)[-1])}"
                message = _freshness_message(result)
            else:
                name = node.get("name") or unique_id.rsplit(".", 1)[-1]
                message = _one_line(result.get("message")) if result.get("status") != "success" else ""
            results.append(
                NodeResult(
                    resource=resource,
                    name=name,
                    path=node.get("original_file_path"),
                    status=str(result.get("status")),
                    message=message,
                    seconds=result.get("execution_time"),
                )
            )
    return results if recorded_any else None


def failure_summary(command: str, results: list[NodeResult]) -> str | None:
    """A few lines naming each failed node, its file and dbt's error; None when nothing failed."""
    failed = [result for result in results if result.failed]
    if not failed:
        return None
    lines = [f"`{command}` failed: {len(failed)} of {len(results)} dbt node(s) failed (from dbt's results):"]
    lines.extend(f"  - {result.describe()}" for result in failed)
    return "\n".join(lines)
