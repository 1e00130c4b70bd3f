"""Several WHOOP apps side by side: tap instances through Meltano's `inherit_from`, run in parallel.

Each instance has its own credentials (its own sandbox app, so its own rate limit), its own token store and,
being its own plugin, its own state ID. The project is the repository's meltano.yml plus the two instances
(written to a temporary copy, as a user adds them to theirs), over the installed plugins.
"""

from __future__ import annotations

import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import duckdb
import pytest
import yaml
from e2e_support import (
    MELTANO,
    PIPELINE_TIMEOUT,
    PROJECT_ROOT,
    isolated_env,
    meltano_failure,
    private_sys_dir,
)
from tap_whoop.athletes.registry import AthleteRegistry
from whoop_sandbox import Sandbox

pytestmark = pytest.mark.timeout(900)

APPS = {"team-a": (0, 1), "team-b": (2, 3)}  # instance -> the sandbox athletes enrolled in its app
LIMIT = (10, 2)


def test_two_apps_through_inherit_from_run_in_parallel(tmp_path: Path) -> None:
    sandbox = Sandbox(seed=51, days=20, athletes=4, rate_limits=[LIMIT, (10000, 86400)]).start()
    try:
        apps = {"team-a": (sandbox.client_id, sandbox.client_secret), "team-b": sandbox.add_client()}
        project = yaml.safe_load((PROJECT_ROOT / "meltano.yml").read_text())
        sys_dir = private_sys_dir(tmp_path / "meltano-sys")
        for name, (client_id, client_secret) in apps.items():
            config = {
                "client_id": client_id,
                "client_secret": client_secret,
                "api_url": sandbox.api_url,
                "token_url": sandbox.token_url,
                "auth_url": sandbox.auth_url,
                "token_store": str(tmp_path / f"{name}-tokens.json"),
                "start_date": "2020-01-01T00:00:00Z",
            }
            registry = AthleteRegistry(config)
            for athlete in APPS[name]:
                registry.import_refresh_token(sandbox.grant_refresh_token(athlete, client_id=client_id))
            project["plugins"]["extractors"].append(
                {"name": f"tap-whoop--{name}", "inherit_from": "tap-whoop", "config": config}
            )
            (sys_dir / "extractors" / f"tap-whoop--{name}").symlink_to(sys_dir / "extractors" / "tap-whoop")
        root = tmp_path / "project"
        root.mkdir()
        (root / "meltano.yml").write_text(yaml.safe_dump(project, sort_keys=False))

        def meltano(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [str(MELTANO), *args],
                cwd=root,
                env=isolated_env(MELTANO_SYS_DIR_ROOT=str(sys_dir)),
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )

        # Meltano creates its system database on first use; two first uses at once would race for it.
        assert meltano("state", "list").returncode == 0
        sandbox.reset_rate_limits()
        sandbox.clear_log()

        runs = {
            name: subprocess.Popen(
                [str(MELTANO), "run", "--no-install", f"tap-whoop--{name}", "target-duckdb"],
                cwd=root,
                env=isolated_env(
                    MELTANO_SYS_DIR_ROOT=str(sys_dir), WHOOP_DUCKDB_PATH=str(tmp_path / f"{name}.duckdb")
                ),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name in apps
        }
        for name, run in runs.items():
            _, err = run.communicate(timeout=PIPELINE_TIMEOUT)
            assert run.returncode == 0, f"{name}: {meltano_failure(err)}"

        log = [r for r in sandbox.request_log if r["path"].startswith("/developer/")]
        assert 429 not in [r["status"] for r in log]
        spans = {}
        for name, (client_id, _) in apps.items():
            expected = {sandbox.athletes[i].user_id for i in APPS[name]}
            mine = [r for r in log if r["client_id"] == client_id]
            assert {r["user_id"] for r in mine} == expected, name
            spans[name] = (min(r["ts"] for r in mine), max(r["ts"] for r in mine))
            with duckdb.connect(str(tmp_path / f"{name}.duckdb"), read_only=True) as con:
                users = {row[0] for row in con.execute("select distinct user_id from raw.cycles").fetchall()}
            assert users == expected, name
        (a_start, a_end), (b_start, b_end) = spans.values()
        assert a_start < b_end, "the two apps' runs overlapped (each has its own limit)"
        assert b_start < a_end, "the two apps' runs overlapped (each has its own limit)"

        states = meltano("state", "list")
        assert states.returncode == 0, states.stderr[-2000:]
        for name in apps:
            assert f"tap-whoop--{name}-to-target-duckdb" in states.stdout + states.stderr, states.stdout
    finally:
        sandbox.stop()


def test_a_run_waits_for_meltanos_database_while_another_run_holds_it(tmp_path: Path) -> None:
    # Runs in parallel share Meltano's SQLite database, each writing a heartbeat every second; a disk stalling
    # for longer than SQLite's own 5 s wait failed a run with `database is locked` (meltano.yml waits 30 s).
    env = isolated_env(MELTANO_SYS_DIR_ROOT=str(tmp_path))
    created = subprocess.run([str(MELTANO), "state", "list"], cwd=PROJECT_ROOT, env=env, capture_output=True)
    assert created.returncode == 0, created.stderr[-2000:]
    held_for = 12.0  # well past SQLite's 5 s after Meltano starts, well within 30 s
    holder = sqlite3.connect(tmp_path / "meltano.db", isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, as another run's commit on a stalled disk holds it
    release = threading.Timer(held_for, holder.execute, ["COMMIT"])
    release.start()
    began = time.monotonic()
    try:
        written = subprocess.run(
            [
                str(MELTANO),
                "state",
                "set",
                "--force",
                "dev:tap-whoop-to-target-duckdb",
                '{"singer_state": {}}',
            ],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        release.join()
        holder.close()
    assert written.returncode == 0, meltano_failure(written.stderr)
    assert time.monotonic() - began >= held_for  # it did wait for the lock, not write around it
