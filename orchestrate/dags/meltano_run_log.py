"""Read the JSON log of `meltano --log-format=json run ...` and say what failed.

Kept free of Airflow imports so it can be unit-tested anywhere. The DAG file uses it to render readable task
logs and to turn a non-zero exit into an error naming the failing plugin, stream or dbt model: the seed lost
days to runs that failed with nothing but an exit code in the log.
"""

from __future__ import annotations

import json
import re
from collections import deque
from dataclasses import dataclass, field

# Meltano names each plugin's output logger "meltano.plugin.<stdio>.<plugin type>.<plugin name>".
_PLUGIN_LOGGER = re.compile(r"meltano\.plugin\.std(?:err|out)\.(?P<kind>\w+)\.(?P<name>[^\s()]+)")
# Singer SDK: "Beginning sync of 'cycles' in incremental mode"; logger names are "<tap>.<stream>".
_STREAM_START = re.compile(r"Beginning (?:\w+ )?sync of '(?P<stream>[^']+)'")
_SDK_LOGGER_LEVEL = re.compile(r"\|\s*(?P<level>ERROR|CRITICAL)\s*\|\s*(?P<logger>\S+)\s*\|")
# dbt: "Database Error in model stg_whoop__cycles (models/staging/stg_whoop__cycles.sql)",
# "Failure in test not_null_x (models/...)", "Compilation Error in model x (...)".
_DBT_NODE_ERROR = re.compile(
    r"(?P<kind>(?:\w+ )?Error|Failure) in (?P<resource>model|test|seed|snapshot|unit_test|source|"
    r"sql_operation|operation|analysis) (?P<node>[\w.]+)(?: \((?P<path>[^)]+)\))?"
)
# dbt errors that are not tied to a node (bad profile, parse errors, ...).
_DBT_RUN_ERROR = re.compile(
    r"^(?:\S+\s+)?(?:Encountered an error|Runtime Error|Parsing Error|Database Error)\b"
)
# The last line of a Python traceback, e.g. "singer_sdk.exceptions.FatalAPIError: 401 Client Error ...".
_EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Exit|Interrupt)\b(?::.*)?$")
# tap-whoop ends a failure the user can fix in one line instead of a traceback: "Error: <cause and fix>".
_ONE_LINE_ERROR = re.compile(r"^Error: (?P<message>.+)$")

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

TAIL_LINES = 25


@dataclass
class DbtFailure:
    """One failing dbt node and the first lines of its error message."""

    kind: str
    resource: str
    node: str
    path: str | None
    detail: list[str] = field(default_factory=list)

    def describe(self) -> str:
        where = f" ({self.path})" if self.path else ""
        detail = " ".join(" ".join(line.split()) for line in self.detail)
        return f"dbt {self.resource} {self.node}{where}: {self.kind}" + (f": {detail}" if detail else "")


@dataclass
class _Plugin:
    name: str
    kind: str | None = None
    tail: deque = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    stream: str | None = None
    failed_stream: str | None = None
    exception: str | None = None


class MeltanoRunLog:
    """Consumes meltano's log line by line; `render` for humans, `failure_summary` when the run failed."""

    def __init__(self, blocks: str) -> None:
        self.blocks = blocks
        self._plugins: dict[str, _Plugin] = {}
        self._failed_blocks: list[dict] = []
        self._meltano_errors: list[str] = []
        self._dbt_failures: list[DbtFailure] = []
        self._dbt_run_errors: list[str] = []
        self._collecting: DbtFailure | None = None
        self._other_lines: deque = deque(maxlen=TAIL_LINES)

    def feed(self, raw: str) -> str:
        """Record one line of meltano output; returns the line as it should appear in the task log."""
        line = raw.rstrip("\n")
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if not isinstance(event, dict) or "event" not in event:
            self._other_lines.append(line)
            return line

        message = _ANSI.sub("", str(event["event"])).rstrip("\n")
        match = _PLUGIN_LOGGER.search(str(event.get("_logger", "")))
        name = event.get("name") or (match and match["name"])
        if name and (event.get("stdio") or match):
            self._plugin_line(name, match["kind"] if match else None, message)
            return f"[{name}] {message}"

        level = str(event.get("level", "info"))
        extras = {
            key: event[key] for key in ("err", "exit_codes", "status") if event.get(key) not in (None, {})
        }
        if event.get("event") == "Block run completed" and event.get("success") is False:
            self._failed_blocks.append(event)
        elif level in ("error", "critical") and message != "Block run completed":
            self._meltano_errors.append(message)
        suffix = "".join(f" {key}={value}" for key, value in extras.items())
        return (
            f"[meltano] {level.upper()}: {message}{suffix}"
            if level != "info"
            else f"[meltano] {message}{suffix}"
        )

    def _plugin_line(self, name: str, kind: str | None, message: str) -> None:
        plugin = self._plugins.setdefault(name, _Plugin(name))
        plugin.kind = plugin.kind or kind
        for line in message.splitlines() or [""]:
            plugin.tail.append(line)
            self._scan(plugin, line)

    def _scan(self, plugin: _Plugin, line: str) -> None:
        if started := _STREAM_START.search(line):
            plugin.stream = started["stream"]
        if sdk_error := _SDK_LOGGER_LEVEL.search(line):
            # SDK stream loggers are "<tap>.<stream>", so an ERROR line tells which stream broke.
            logger_name = sdk_error["logger"]
            if logger_name.startswith(f"{plugin.name}.") and plugin.failed_stream is None:
                plugin.failed_stream = logger_name[len(plugin.name) + 1 :]
        if _EXCEPTION_LINE.match(line.strip()):
            plugin.exception = line.strip()
        elif one_line := _ONE_LINE_ERROR.match(line.strip()):
            plugin.exception = one_line["message"]

        node_error = _DBT_NODE_ERROR.search(line)
        if node_error and self._collecting is not None and not self._collecting.detail:
            # dbt heads each failure with "Failure in <node>", then the underlying error: for the same node
            # that is the more precise kind ("Runtime Error"); for a unit test it names the model under test.
            if node_error["node"] == self._collecting.node:
                self._collecting.kind = node_error["kind"]
            else:
                self._collecting.detail.append(_strip_dbt_timestamp(line).strip())
        elif node_error:
            self._collecting = DbtFailure(
                kind=node_error["kind"],
                resource=node_error["resource"],
                node=node_error["node"],
                path=node_error["path"],
            )
            self._dbt_failures.append(self._collecting)
        elif self._collecting is not None:
            text = _strip_dbt_timestamp(line).strip()
            # dbt prints the node's error lines right after its header, then a blank line.
            if not text or text.startswith("compiled code at"):
                self._collecting = None if self._collecting.detail else self._collecting
            elif len(self._collecting.detail) < 4:
                self._collecting.detail.append(text)
        elif _DBT_RUN_ERROR.search(_strip_dbt_timestamp(line).strip()):
            self._dbt_run_errors.append(_strip_dbt_timestamp(line).strip())

    def failing_plugins(self) -> list[_Plugin]:
        """Plugins meltano reported as failed (by exit code), else those that printed an exception."""
        failed: list[_Plugin] = []
        for block in self._failed_blocks:
            exit_codes = block.get("exit_codes") or {}
            failed.extend(
                plugin
                for plugin in self._plugins.values()
                if plugin.kind and exit_codes.get(plugin.kind) not in (None, 0) and plugin not in failed
            )
            err = str(block.get("err") or "")
            failed.extend(
                plugin
                for plugin in self._plugins.values()
                if re.search(rf"`{re.escape(plugin.name)}[ :`]", err) and plugin not in failed
            )
        if not failed:
            failed = [plugin for plugin in self._plugins.values() if plugin.exception]
        return failed

    def failure_summary(self, exit_code: int) -> str:
        """A few lines naming what failed and why, for the task log and the task's exception."""
        lines = [f"`meltano run {self.blocks}` failed with exit code {exit_code}."]
        for block in self._failed_blocks:
            err = str(block.get("err") or "unknown error").splitlines()[0]
            lines.append(
                f"Failed block: {err}"
                + (f" (exit codes {block['exit_codes']})" if block.get("exit_codes") else "")
            )
        block_errors = {str(block.get("err")) for block in self._failed_blocks}
        lines.extend(
            f"Meltano error: {message.splitlines()[0]}"
            for message in self._meltano_errors[:3]
            if message not in block_errors
        )

        failing = self.failing_plugins()
        for plugin in failing:
            stream = plugin.failed_stream or plugin.stream
            what = f"Failing plugin: {plugin.name}"
            if stream and plugin.kind == "extractors":
                what += f", stream '{stream}'"
            lines.append(what)
            if plugin.exception:
                lines.append(f"Error: {plugin.exception}")
        if dbt_failures := _unique(self._dbt_failures):
            lines.append(f"Failing dbt nodes ({len(dbt_failures)}):")
            lines.extend(f"  - {failure.describe()}" for failure in dbt_failures)
        lines.extend(f"dbt: {message}" for message in self._dbt_run_errors[:3])

        tails = [(plugin.name, plugin.tail) for plugin in failing] or [("meltano", self._other_lines)]
        for name, tail in tails:
            if tail:
                lines.append(f"Last {len(tail)} lines from {name}:")
                lines.extend(f"  | {line}" for line in tail)
        return "\n".join(lines)


def _strip_dbt_timestamp(line: str) -> str:
    # dbt prefixes its console lines with "HH:MM:SS  "; the message is what identifies the error.
    return re.sub(r"^\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:\s{1,2}|$)", "", line)


def _unique(failures: list[DbtFailure]) -> list[DbtFailure]:
    # dbt repeats each failure in its end-of-run summary; report each node once, with the fullest detail.
    by_node: dict[tuple[str, str], DbtFailure] = {}
    for failure in failures:
        key = (failure.resource, failure.node)
        if key not in by_node or len(failure.detail) > len(by_node[key].detail):
            by_node[key] = failure
    return list(by_node.values())
