"""Benchmark a backfill of sleep signals, tap-whoop -> target-duckdb, against the rate-limit floor.

    .venv/bin/python tap-whoop/scripts/benchmark_sleep_signals.py [--quick] [--nights N]

For each sampling interval (6 s, then 1 s), one athlete's last N nights (start_date N days back: the 14-day
head as fresh data, the rest as history) are synced by a `tap-whoop` process (streams `sleeps` and
`sleep_signals` selected) piped into the real loader, target-duckdb 0.8.0 from Meltano's venv, with the
project's target-duckdb config from meltano.yml (batch_size_rows included). Printed per interval:

- wall time (tap start to loader exit) against the floor, API calls / the app's limit: WHOOP's 100 calls a
  minute is the wall; the pipeline must not be (wall / floor <= 1.2); and (full size) the tap's own, its
  output discarded;
- samples that reached DuckDB and samples per second of wall time (100 calls a minute at 1 s sampling is
  ~48,000 a second);
- peak RSS of the tap and of the loader (each its own process, from wait4);
- bytes per stored sample: raw.sleep_signals copied alone into a fresh DuckDB file, its size / samples;
- the column types target-duckdb created for raw.sleep_signals.

The sandbox runs in its own process. `--quick` (the suite's size) takes 5 nights behind 2 calls per 1.2 s,
WHOOP's rate scaled down in window only: the calls a second, and so the samples a second at each interval,
stay those of the real limit. The full run takes 100 nights behind WHOOP's 100 calls per 60 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from whoop_sandbox.process import SandboxProcess

ROOT = Path(__file__).resolve().parents[2]
TARGET = ROOT / ".meltano" / "loaders" / "target-duckdb" / "venv" / "bin" / "target-duckdb"
SELECTED = ("sleeps", "sleep_signals")
RUNS = (6.0, 1.0)  # sampling intervals, seconds
# Run by the loader's own Python (its duckdb wrote the file): the table alone in a fresh file; its columns.
MEASURE = """
import json, os, sys, duckdb
db, copy = sys.argv[1], sys.argv[2]
con = duckdb.connect(copy)
con.execute("set enable_progress_bar = false")  # it would print to stdout, where the figures go
con.execute(f"attach '{db}' as loaded (read_only)")
rows, sleeps, samples, counted = con.execute(
    "select count(*), count(distinct sleep_id), sum(sample_count), sum(json_array_length(stream))"
    " from loaded.raw.sleep_signals").fetchone()
types = con.execute(
    "select column_name, data_type from information_schema.columns where table_catalog = 'loaded' "
    "and table_schema = 'raw' and table_name = 'sleep_signals' order by ordinal_position").fetchall()
con.execute("create table sleep_signals as select * from loaded.raw.sleep_signals")
con.execute("detach loaded")
con.execute("checkpoint")
con.close()
print(json.dumps({"rows": rows, "sleeps": sleeps, "samples": int(samples or 0), "counted": int(counted or 0),
                  "bytes": os.path.getsize(copy), "types": types}))
"""


def target_config(database: Path) -> dict:
    """The project's target-duckdb config (meltano.yml), writing to `database`."""
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    (loader,) = [p for p in project["plugins"]["loaders"] if p["name"] == "target-duckdb"]
    config = {k: v for k, v in loader.get("config", {}).items() if not isinstance(v, str) or "$" not in v}
    return {**config, "filepath": str(database)}


def catalog(config_path: Path) -> dict:
    """The tap's catalog with only the sleeps and their signals selected."""
    found = json.loads(
        subprocess.run(  # noqa: S603 - the tap itself
            [sys.executable, "-m", "tap_whoop", "--config", str(config_path), "--discover"],
            capture_output=True,
            check=True,
        ).stdout
    )
    for stream in found["streams"]:
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = stream["tap_stream_id"] in SELECTED
    return found


def wait(process: subprocess.Popen) -> tuple[int, float]:
    """Reap `process`: (exit status, peak RSS in MiB), from the kernel's own account of that process."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_maxrss / 1024  # Linux reports KiB


def loader(workdir: Path) -> list[str]:
    """The target-duckdb command, as the project ships it."""
    return [str(TARGET), "--config", str(workdir / "target.json")]


def tap_command(workdir: Path, sandbox: SandboxProcess, nights: int) -> list[str]:
    """A first run of tap-whoop over the last `nights` nights (its own token store: no state)."""
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=nights)
    config = {
        **{k: sandbox.credentials[k] for k in ("client_id", "client_secret", "api_url", "token_url")},
        "refresh_token": sandbox.call("grant_refresh_token", athlete=0),
        "token_store": str(workdir / f"tokens-{time.monotonic_ns()}.json"),
        "start_date": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    config_path, catalog_path = workdir / "tap.json", workdir / "catalog.json"
    config_path.write_text(json.dumps(config))
    catalog_path.write_text(json.dumps(catalog(config_path)))
    return [sys.executable, "-m", "tap_whoop", "--config", str(config_path), "--catalog", str(catalog_path)]


def run_tap_alone(workdir: Path, sandbox: SandboxProcess, nights: int) -> tuple[float, int]:
    """The same backfill with the tap's output thrown away: (wall seconds, API calls), the tap's own pace."""
    command = tap_command(workdir, sandbox, nights)
    sandbox.call("reset_rate_limits")
    sandbox.call("clear_log")
    began = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)  # noqa: S603
    wall = time.perf_counter() - began
    return wall, sum(r["path"].startswith("/developer/") and r["status"] == 200 for r in sandbox.log())


def run_pipeline(workdir: Path, sandbox: SandboxProcess, nights: int) -> dict:
    """tap-whoop | target-duckdb over the last `nights` nights; wall time, peak RSS of each, their outputs."""
    command = tap_command(workdir, sandbox, nights)
    database = workdir / "whoop.duckdb"
    (workdir / "target.json").write_text(json.dumps(target_config(database)))
    sandbox.call("clear_log")
    with open(workdir / "tap.log", "wb") as tap_log, open(workdir / "target.log", "wb") as target_log:
        began = time.perf_counter()
        tap = subprocess.Popen(  # noqa: S603 - the tap itself
            command,
            stdout=subprocess.PIPE,
            stderr=tap_log,
        )
        target = subprocess.Popen(  # noqa: S603 - Meltano's target-duckdb
            loader(workdir),
            stdin=tap.stdout,
            stdout=subprocess.DEVNULL,
            stderr=target_log,
            env={**os.environ, "TZ": "UTC"},
        )
        assert tap.stdout is not None
        tap.stdout.close()  # the loader holds the pipe's read end alone
        tap_status, tap_rss = wait(tap)
        target_status, target_rss = wait(target)
        wall = time.perf_counter() - began
    if tap_status or target_status:
        logs = (workdir / "tap.log").read_text()[-2000:] + (workdir / "target.log").read_text()[-2000:]
        raise RuntimeError(f"tap exited {tap_status}, target-duckdb {target_status}:\n{logs}")
    measured = subprocess.run(  # noqa: S603 - the loader's own Python
        [str(TARGET.parent / "python"), "-c", MEASURE, str(database), str(workdir / "copy.duckdb")],
        capture_output=True,
        text=True,
        check=False,
    )
    if measured.returncode:
        raise RuntimeError(f"reading {database} failed: {measured.stderr[-2000:]}")
    stored = json.loads(measured.stdout.splitlines()[-1])
    database.unlink()
    (workdir / "copy.duckdb").unlink()
    return {"wall": wall, "tap_rss": tap_rss, "target_rss": target_rss, **stored}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 nights, 2 calls per 1.2 s")
    parser.add_argument("--nights", type=int, default=None, help="nights to backfill (default 5 / 100)")
    args = parser.parse_args(argv)
    if not TARGET.exists():
        print(f"benchmark_sleep_signals: {TARGET} is missing; run `make plugins` first.", file=sys.stderr)
        return 2
    limit, window = (2, 1.2) if args.quick else (100, 60.0)
    nights = args.nights or (5 if args.quick else 100)
    batch = target_config(Path()).get("batch_size_rows", "default")
    print(f"sleep signals benchmark: {nights} nights, one athlete, {limit} calls per {window:g} s, "
          f"tap-whoop | target-duckdb (batch_size_rows {batch})")  # fmt: skip
    summary = []
    with tempfile.TemporaryDirectory(prefix="tap-whoop-signals-") as tmp:
        workdir = Path(tmp)
        for interval in RUNS:
            with SandboxProcess(
                workdir, "--seed", "7", "--athletes", "1", "--days", str(nights + 2),
                "--rate-limits", f"{limit}/{window:g}", "--signal-interval", f"{interval:g}",
            ) as sandbox:  # fmt: skip
                result = run_pipeline(workdir, sandbox, nights)
                api = [r for r in sandbox.log() if r["path"].startswith("/developer/")]
                # The tap's own pace: at the full size only (the quick one keeps the suite short).
                alone = None if args.quick else run_tap_alone(workdir, sandbox, nights)
            calls = sum(r["status"] == 200 for r in api)
            signals = sum(r["path"].endswith("/stream") and r["status"] == 200 for r in api)
            floor = calls / limit * window
            window_minimum = (math.ceil(calls / limit) - 1) * window
            samples, wall = result["samples"], result["wall"]
            per_sample = result["bytes"] / samples if samples else float("nan")
            print(f"\n{interval:g} s sampling")
            print(f"   wall time        {wall:8.1f} s")
            loaded = f"{result['sleeps']} sleeps in {result['rows']} rows loaded"
            print(f"   API calls        {calls:8d}   ({signals} sleep streams, {loaded})")
            print(f"   floor            {floor:8.1f} s   (calls / {limit} per {window:g} s)")
            print(f"   wall / floor     {wall / floor:8.2f}   (fixed windows: the last opens at "
                  f"{window_minimum:.0f} s)")  # fmt: skip
            print(f"   429 responses    {sum(r['status'] == 429 for r in api):8d}")
            tap_alone = "-"
            if alone is not None:
                tap_alone = f"{alone[0] / (alone[1] / limit * window):.2f}"
                print(f"   tap alone        {alone[0]:8.1f} s   (output discarded; wall / floor {tap_alone})")
            print(f"   samples          {samples:8d}   ({samples / wall:,.0f} a second reached DuckDB; "
                  f"{samples * limit / window / max(signals, 1):,.0f} a second at the limit)")  # fmt: skip
            rss = f"tap {result['tap_rss']:.0f} MiB, target-duckdb {result['target_rss']:.0f} MiB"
            print(f"   peak RSS         {rss}")
            print(f"   stored           {per_sample:8.1f} bytes per sample in DuckDB")
            print("   columns          " + ", ".join(f"{name} {kind}" for name, kind in result["types"]))
            if result["counted"] != samples:
                print(
                    f"   MISMATCH: sample_count sums to {samples}, the stored arrays hold {result['counted']}"
                )
                return 1
            summary.append(
                f"{interval:g} s: wall/floor {wall / floor:.2f} (tap alone {tap_alone}), "
                f"{samples / wall:,.0f} samples/s, "
                f"RSS tap {result['tap_rss']:.0f} / target {result['target_rss']:.0f} MiB, "
                f"{per_sample:.1f} B/sample"
            )
    print("\nsleep signals: " + "; ".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
