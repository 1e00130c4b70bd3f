"""Benchmark tap-whoop against the offline WHOOP sandbox and print measured figures.

    .venv/bin/python tap-whoop/scripts/benchmark.py [--quick]

1. Backfill with WHOOP's rate limits on (100 requests/minute): wall time, pages, wall / floor (the floor is
   pages / 100 per minute: no client is faster without drawing 429s) and the 429 count from the request log.
2. Throughput with limits off: records/s of the tap (a `tap-whoop` process writing Singer messages) against a
   bare `requests` + `json` loop over the same pages, and their ratio.

The sandbox runs in its own process, as WHOOP would. `--quick` uses one year of history and a scaled-down
limit (20 requests per 2 s), so it finishes in seconds; the full run uses five years and WHOOP's real limits.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from tap_whoop.streams.endpoints import STREAM_TYPES
from tap_whoop.streams.incremental import WhoopCollectionStream
from whoop_sandbox.process import SandboxProcess

COLLECTIONS = tuple(stream.path for stream in STREAM_TYPES if issubclass(stream, WhoopCollectionStream))
START_DATE = "2000-01-01T00:00:00Z"


def start_sandbox(workdir: Path, days: int, rate_limits: str) -> SandboxProcess:
    """One athlete with `days` of history behind `rate_limits` (the sandbox's --rate-limits)."""
    return SandboxProcess(
        workdir, "--seed", "7", "--athletes", "1", "--days", str(days), "--rate-limits", rate_limits
    )


def run_tap(sandbox: SandboxProcess, workdir: Path) -> tuple[float, int]:
    """Run `tap-whoop` over the whole history; returns (wall seconds, records emitted)."""
    config = {
        **{k: sandbox.credentials[k] for k in ("client_id", "client_secret", "api_url", "token_url")},
        "refresh_token": sandbox.call("grant_refresh_token", athlete=0),
        "token_store": str(workdir / "tokens.json"),
        "start_date": START_DATE,
    }
    config_path = workdir / "config.json"
    config_path.write_text(json.dumps(config))
    records = 0
    began = time.perf_counter()
    with subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "tap_whoop", "--config", str(config_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    ) as tap:
        for line in tap.stdout:
            if line.startswith(b'{"type":"RECORD"'):
                records += 1
    wall = time.perf_counter() - began
    if tap.returncode != 0:
        raise RuntimeError(f"tap-whoop exited with {tap.returncode}")
    return wall, records


def run_tap_in_process(sandbox: SandboxProcess, workdir: Path) -> tuple[float, int]:
    """The same sync inside this process, timed from `sync_all()`: the tap's own cost per record, without
    interpreter start-up and imports. Singer messages go to a counting sink instead of a pipe."""
    from tap_whoop.tap import TapWhoop

    class Sink(io.TextIOBase):
        records = 0

        def write(self, text: str) -> int:
            self.records += text.count('{"type":"RECORD"')
            return len(text)

    config = json.loads((workdir / "config.json").read_text())
    config["refresh_token"] = sandbox.call("grant_refresh_token", athlete=0)
    tap = TapWhoop(config=config, parse_env_config=False)
    # Timed from here, the run's one-off token refresh and profile call (whose tokens these are) are in:
    # milliseconds against seconds of records, so the ratio to the bare loop stays the tap's cost per record.
    sink = Sink()
    logging.disable(logging.WARNING)  # the tap's log lines would otherwise interleave with the figures
    try:
        began = time.perf_counter()
        with contextlib.redirect_stdout(sink):
            tap.sync_all()
        return time.perf_counter() - began, sink.records
    finally:
        logging.disable(logging.NOTSET)


def run_bare_loop(sandbox: SandboxProcess) -> tuple[float, int, int]:
    """The same pages with nothing but requests + json; returns (wall seconds, records, pages)."""
    token = requests.post(
        sandbox.credentials["token_url"],
        data={
            "grant_type": "refresh_token",
            "refresh_token": sandbox.call("grant_refresh_token", athlete=0),
            "client_id": sandbox.credentials["client_id"],
            "client_secret": sandbox.credentials["client_secret"],
            "scope": "offline",
        },
        timeout=30,
    ).json()["access_token"]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    records = pages = 0
    began = time.perf_counter()
    for path in COLLECTIONS:
        params = {"limit": 25, "start": "2000-01-01T00:00:00.000Z"}
        while True:
            response = session.get(sandbox.credentials["api_url"] + path, params=params, timeout=30)
            body = json.loads(response.text)
            records += len(body["records"])
            pages += 1
            if not body.get("next_token"):
                break
            params["nextToken"] = body["next_token"]
    return time.perf_counter() - began, records, pages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one year, 20 requests per 2 s")
    args = parser.parse_args(argv)
    days, limit, window = (365, 20, 2.0) if args.quick else (1825, 100, 60.0)

    with tempfile.TemporaryDirectory(prefix="tap-whoop-bench-") as tmp:
        workdir = Path(tmp)
        print(f"tap-whoop benchmark: {days} days of history, seed 7, one athlete")

        with start_sandbox(workdir, days, f"{limit}/{window:g},10000/86400") as sandbox:
            wall, records = run_tap(sandbox, workdir)
            log = sandbox.log()
        api = [r for r in log if r["path"].startswith("/developer/")]
        pages = sum(r["status"] == 200 for r in api)
        floor = pages / limit * window
        # With fixed windows a client may spend each window's quota at once, so the last window need not be
        # waited out: no client can finish before the start of the window holding its last request.
        window_minimum = (math.ceil(pages / limit) - 1) * window
        print(f"\n1. Backfill with rate limits on ({limit} requests per {window:g} s)")
        print(f"   wall time        {wall:8.1f} s")
        print(f"   pages            {pages:8d}   ({records} records)")
        print(f"   floor            {floor:8.1f} s   (pages / {limit} per {window:g} s)")
        print(f"   wall / floor     {wall / floor:8.2f}")
        print(
            f"   wall / window minimum {wall / window_minimum:5.2f}   "
            f"(fixed windows: {window_minimum:.0f} s until the last window opens)"
        )
        print(f"   429 responses    {sum(r['status'] == 429 for r in api):8d}")

        with start_sandbox(workdir, days, "none") as sandbox:
            bare_wall, bare_records, bare_pages = run_bare_loop(sandbox)
            process_wall, process_records = run_tap(sandbox, workdir)
            sync_wall, sync_records = run_tap_in_process(sandbox, workdir)
        bare_rate = bare_records / bare_wall
        print("\n2. Throughput with rate limits off")
        bare = f"({bare_records} records, {bare_pages} pages, {bare_wall:.2f} s)"
        print(f"   requests + json      {bare_rate:8.0f} records/s   {bare}")
        for label, wall_s, count in (
            ("tap-whoop sync_all()", sync_wall, sync_records),
            ("tap-whoop process", process_wall, process_records),
        ):
            rate = count / wall_s
            print(
                f"   {label:20} {rate:8.0f} records/s   ({count} records, {wall_s:.2f} s)"
                f"   ratio to bare loop {rate / bare_rate:.2f}"
            )
        print("   (the process figure includes interpreter start-up, imports and the profile/body calls)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
