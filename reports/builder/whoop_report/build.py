"""Build the report: the locked npm packages, the `whoop` source, `evidence sources` and
`evidence build:strict`.

The site lands in reports/build/ (index.html plus one folder per page); it is static, so any web server (or a
copy to object storage) serves it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .node import Node, find_node
from .sources import SOURCE, ConfigError, write_connection

# Written into node_modules after a successful `npm ci`: the lock file it installed.
INSTALL_STAMP = ".whoop-report-lock-sha256"


class BuildError(Exception):
    """A step failed; the message says which, and its own output is above it."""


@dataclass(frozen=True)
class Report:
    """The Evidence project in `root` (reports/)."""

    root: Path

    @property
    def source_dir(self) -> Path:
        return self.root / "sources" / SOURCE

    @property
    def data_dir(self) -> Path:
        return self.root / ".evidence" / "template" / "static" / "data" / SOURCE

    @property
    def index(self) -> Path:
        return self.root / "build" / "index.html"

    def source_queries(self) -> list[str]:
        return sorted(p.stem for p in self.source_dir.glob("*.sql"))


def lock_digest(root: Path) -> str:
    return hashlib.sha256((root / "package-lock.json").read_bytes()).hexdigest()


def run(step: str, command: list[str], cwd: Path, env: Mapping[str, str]) -> None:
    started = time.monotonic()
    print(f"report: {step} ...", flush=True)
    # The commands are this package's own (npm and Evidence from the chosen Node), never user input.
    result = subprocess.run(command, cwd=cwd, env=dict(env), check=False)  # noqa: S603
    if result.returncode != 0:
        raise BuildError(f"{step} failed (exit {result.returncode}); its output is above")
    print(f"report: {step} took {time.monotonic() - started:.0f} s", flush=True)


def install(report: Report, node: Node, env: Mapping[str, str]) -> None:
    """`npm ci` from package-lock.json, skipped while node_modules holds exactly that lock."""
    stamp = report.root / "node_modules" / INSTALL_STAMP
    digest = lock_digest(report.root)
    if stamp.is_file() and stamp.read_text().strip() == digest:
        return
    run("npm ci (the versions in reports/package-lock.json)", [str(node.npm), "ci"], report.root, env)
    stamp.write_text(digest + "\n")


def evidence_env(base: Mapping[str, str], node: Node, extra: Mapping[str, str]) -> dict[str, str]:
    env = {
        # Evidence's own EVIDENCE_SOURCE__* settings come only from the builder, never from a stray shell.
        **{k: v for k, v in base.items() if not k.startswith("EVIDENCE_SOURCE__")},
        # No usage reporting from a report build (Evidence, npm).
        "SEND_ANONYMOUS_USAGE_STATS": "no",
        "NPM_CONFIG_UPDATE_NOTIFIER": "false",
        **extra,
    }
    return node.env(env)


def build(report: Report, warehouse: str, env: Mapping[str, str], duckdb_path: Path | None) -> Path:
    """Build the site from `warehouse`; returns the path of its index.html."""
    node, child_env = sources(report, warehouse, env, duckdb_path)
    npx = str(node.bin_dir / "npx")
    run("evidence build", [npx, "--no-install", "evidence", "build:strict"], report.root, child_env)
    if not report.index.is_file():
        raise BuildError(f"evidence build wrote no {report.index}")
    return report.index


def sources(
    report: Report, warehouse: str, env: Mapping[str, str], duckdb_path: Path | None
) -> tuple[Node, dict[str, str]]:
    """The report's data from `warehouse` (`evidence sources`, one parquet file per source query); returns the
    Node and the environment Evidence runs with."""
    if not (report.root / "package-lock.json").is_file():
        raise ConfigError(f"{report.root} is not the report project (no package-lock.json)")
    node = find_node(env.get("PATH"))
    print(f"report: Node {node.version} ({node.origin}, {node.bin_dir}); warehouse {warehouse}", flush=True)
    extra = write_connection(report.source_dir, warehouse, env, duckdb_path)
    child_env = evidence_env(env, node, extra)
    install(report, node, child_env)

    npx = str(node.bin_dir / "npx")
    run(
        "evidence sources (the marts, read-only)",
        [npx, "--no-install", "evidence", "sources"],
        report.root,
        child_env,
    )
    missing = [q for q in report.source_queries() if not (report.data_dir / q / f"{q}.parquet").is_file()]
    if missing:
        raise BuildError(
            f"evidence sources produced no data for {', '.join(missing)}; the query errors are above"
        )
    return node, child_env


def default_root() -> Path:
    """reports/ of the Meltano project that runs us, else the one this package was installed from."""
    project = os.environ.get("MELTANO_PROJECT_ROOT")
    if project:
        return Path(project) / "reports"
    return Path(__file__).resolve().parents[2]
