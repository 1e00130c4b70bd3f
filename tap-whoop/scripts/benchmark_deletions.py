"""Benchmark: WHOOP API calls per incremental run, with and without webhooks, measured side by side.

    .venv/bin/python tap-whoop/scripts/benchmark_deletions.py

Two identical sandboxes (same seed, so the same athlete and history), one tap each, 14-day lookback:
1. a backfill, then a run with nothing changed (steady state);
2. the same changes to both: a workout deleted 3 days ago, a sleep deleted 5 days ago (its recovery goes with
   it), a sleep deleted 40 days ago, a workout edited 30 days ago, a workout logged today for 2 days ago;
3. the next incremental run. One tap relies on reconciliation alone; the other also has `tap-whoop serve`
   receiving the sandbox's webhooks. Printed: calls by kind (list pages, profile/body, lookups by id), the
   deletions each caught and whether the out-of-window edit landed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import logging
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tap_whoop.streams.endpoints import STREAM_TYPES
from tap_whoop.streams.incremental import WhoopCollectionStream
from tap_whoop.tap import TapWhoop
from whoop_sandbox import Sandbox

SEED, DAYS, LOOKBACK = 7, 90, 14
LIST_PATHS = {"/developer" + s.path for s in STREAM_TYPES if issubclass(s, WhoopCollectionStream)}


@dataclass
class Calls:
    lists: int
    profile_body: int
    lookups: int

    @property
    def total(self) -> int:
        return self.lists + self.profile_body + self.lookups


@dataclass
class Outcome:
    steady: Calls
    after_changes: Calls
    deletions_caught: int
    deletions_made: int
    old_edit_landed: bool


def count(sandbox: Sandbox) -> Calls:
    api = [e for e in sandbox.request_log if e["path"].startswith("/developer/")]
    lists = sum(e["path"] in LIST_PATHS for e in api)
    profile_body = sum(e["path"].startswith("/developer/v2/user/") for e in api)
    return Calls(lists, profile_body, len(api) - lists - profile_body)


def sync(config: dict, state: dict | None) -> tuple[list[dict], dict]:
    """One tap run in this process: (records, final state)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        TapWhoop(config=dict(config), state=state, parse_env_config=False).sync_all()
    messages = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    states = [m["value"] for m in messages if m["type"] == "STATE"]
    return [m for m in messages if m["type"] == "RECORD"], json.loads(json.dumps(states[-1]))


class Service:
    """`tap-whoop serve`'s application on uvicorn in a thread (the sandbox posts to it over HTTP)."""

    def __init__(self, config: dict) -> None:
        import uvicorn
        from tap_whoop.service.app import create_app

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.server = uvicorn.Server(
            uvicorn.Config(create_app(config), host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        return f"http://127.0.0.1:{self.port}/webhooks/whoop"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def scenario(workdir: Path, *, webhooks: bool) -> Outcome:
    now = dt.datetime.now(dt.UTC)
    with Sandbox(seed=SEED, days=DAYS, athletes=1, rate_limits=[], now=now, workouts_at=(3, 30)) as sandbox:
        config = {
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
            "refresh_token": sandbox.grant_refresh_token(0),
            "api_url": sandbox.api_url,
            "token_url": sandbox.token_url,
            "token_store": str(workdir / f"tokens-{'webhooks' if webhooks else 'plain'}.json"),
            "start_date": (now - dt.timedelta(days=DAYS + 5)).strftime("%Y-%m-%dT00:00:00Z"),
            "lookback_days": LOOKBACK,
        }
        with Service(config) if webhooks else contextlib.nullcontext() as url:
            if url:
                sandbox.configure_webhooks(url, retry_delays=[0.2, 0.5, 1.0], timeout=5.0)
            _, state = sync(config, None)
            sandbox.clear_log()
            _, state = sync(config, state)
            steady = count(sandbox)

            victims = [
                ("workout", sandbox.record_near("workout", athlete=0, days_ago=3)),
                ("sleep", sandbox.record_near("sleep", athlete=0, days_ago=5)),
                ("sleep", sandbox.record_near("sleep", athlete=0, days_ago=40)),
            ]
            for kind, record in victims:
                sandbox.delete_record(kind, record["id"])
            edited = sandbox.edit_workout(athlete=0, days_ago=30)
            sandbox.add_past_workout(athlete=0, days_ago=2)
            if url:
                assert sandbox.wait_for_webhooks(60), "webhooks were not delivered"
            sandbox.clear_log()
            records, _ = sync(config, state)
            after = count(sandbox)
        deleted = {
            (r["record"]["stream"], r["record"]["id"]) for r in records if r["stream"] == "deleted_records"
        }
        made = {(f"{kind}s", r["id"]) for kind, r in victims} | {("recoveries", victims[1][1]["id"])}
        made |= {("recoveries", victims[2][1]["id"])}
        # As WHOOP served it (the tap adds unmodelled_fields, empty here).
        landed = any(
            r["stream"] == "workouts"
            and {k: v for k, v in r["record"].items() if k != "unmodelled_fields"} == edited
            for r in records
        )
        return Outcome(steady, after, len(deleted & made), len(made), landed)


def measure() -> dict[str, Outcome]:
    logging.disable(logging.WARNING)
    try:
        with tempfile.TemporaryDirectory(prefix="tap-whoop-bench-deletions-") as tmp:
            return {
                "without webhooks": scenario(Path(tmp), webhooks=False),
                "with webhooks": scenario(Path(tmp), webhooks=True),
            }
    finally:
        logging.disable(logging.NOTSET)


def summary_line(results: dict[str, Outcome]) -> str:
    parts = []
    for label, o in results.items():
        a = o.after_changes
        parts.append(
            f"{label} {a.total} ({a.lists} list + {a.profile_body} profile/body + {a.lookups} by id; "
            f"{o.deletions_caught}/{o.deletions_made} deletions)"
        )
    steady = {o.steady.total for o in results.values()}
    return (
        f"API calls per incremental run after 5 changes: {'; '.join(parts)}; "
        f"steady state {'/'.join(str(s) for s in sorted(steady))} (no lookups)"
    )


def main() -> int:
    results = measure()
    print(f"tap-whoop deletions benchmark: seed {SEED}, {DAYS} days, one athlete, {LOOKBACK}-day lookback\n")
    print(f"{'':34}{'without webhooks':>18}{'with webhooks':>16}")
    rows = [
        ("steady state: API calls", lambda o: o.steady.total),
        ("  of which lookups by id", lambda o: o.steady.lookups),
        ("after the changes: API calls", lambda o: o.after_changes.total),
        ("  list pages", lambda o: o.after_changes.lists),
        ("  profile + body", lambda o: o.after_changes.profile_body),
        ("  lookups by id", lambda o: o.after_changes.lookups),
        ("deletions caught (of 5)", lambda o: o.deletions_caught),
        ("edit 30 days ago landed", lambda o: "yes" if o.old_edit_landed else "no"),
    ]
    plain, hooked = results["without webhooks"], results["with webhooks"]
    for label, value in rows:
        print(f"{label:34}{value(plain)!s:>18}{value(hooked)!s:>16}")
    print("\n" + summary_line(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
