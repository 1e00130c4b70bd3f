"""Acceptance at a scaled-down rate limit: 20 athletes in one run, one pacer, fair order; concurrent runs.

Time is measured in the sandbox's rate windows (it numbers them in its log), not in seconds, so a loaded
machine cannot fail these tests: the wall-time figures are in scripts/benchmark_athletes.py.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
from athletes_support import API_ROOT, COLLECTION_PATHS, COLLECTIONS, config_for, enroll, partitions, run_tap

LIMIT, WINDOW = 20, 5.0
KINDS = {"cycles": "cycle", "sleeps": "sleep", "recoveries": "recovery", "workouts": "workout"}
KEYS = {"cycles": "id", "sleeps": "id", "recoveries": "cycle_id", "workouts": "id"}
TAP = str(Path(sys.executable).with_name("tap-whoop"))


def _params(entry: dict) -> dict:
    return {k: (v[0] if isinstance(v, list) else v) for k, v in entry["params"].items()}


@pytest.mark.slow
def test_twenty_athletes_one_run_no_429_every_window_full_and_fresh_data_first(
    whoop_sandbox_factory, tmp_path
):
    long = 7  # this athlete brings more than a year of history
    sandbox = whoop_sandbox_factory(
        seed=31, days=20, athletes=20, athlete_days={long: 400}, rate_limits=[(LIMIT, WINDOW), (10000, 86400)]
    )
    # The schedule of list calls at the limit; sleep signals (about as many calls again, minutes of windows
    # here) have their own order test (tap-whoop/tests/test_sleep_signals.py) and backfill benchmark.
    config = config_for(sandbox, str(tmp_path / "tokens.json"), sleep_signals=False)
    user_ids = enroll(sandbox, config, range(20))
    sandbox.reset_rate_limits()
    sandbox.clear_log()

    result = run_tap(config)
    assert result.error is None, result.error

    api = [r for r in sandbox.request_log if r["path"].startswith(API_ROOT + "/")]
    statuses = [r["status"] for r in api]
    assert 429 not in statuses
    windows = sorted({r["rate_window"] for r in api})
    assert windows == list(range(windows[0], windows[0] + len(windows))), "no window skipped"
    assert len(windows) == math.ceil(len(api) / LIMIT), (
        f"{len(api)} calls took {len(windows)} windows of {LIMIT}: every window but the last was full"
    )

    # Everyone's whole history landed in this one run.
    for stream in COLLECTIONS:
        for index, user_id in enumerate(user_ids):
            served = {r.key for r in sandbox.athletes[index].records[KINDS[stream]].items}
            got = {r[KEYS[stream]] for r in result.records[stream] if r["user_id"] == user_id}
            assert got == served, (stream, user_id)
            assert "backfill_before" not in partitions(result.state, stream)[user_id]

    # Fresh data first: every athlete's head (the recent window) before any history page; then the long
    # history shares the rest round-robin instead of holding up the others' history.
    collection = [r for r in api if r["path"] in COLLECTION_PATHS.values()]
    heads = [r for r in collection if "end" not in _params(r)]
    history = [r for r in collection if "end" in _params(r)]
    assert len(heads) == 4 * len(user_ids)
    last_head, first_history = max(r["ts"] for r in heads), min(r["ts"] for r in history)
    assert last_head <= first_history, (
        f"last head at {last_head:.3f}, first history page at {first_history:.3f}"
    )
    long_history = [r for r in history if r["user_id"] == user_ids[long]]
    others_done = max(r["ts"] for r in history if r["user_id"] != user_ids[long])
    assert others_done < long_history[-1]["ts"], "the others' history did not wait for the long one"
    long_first, long_last = history.index(long_history[0]), history.index(long_history[-1])
    between = {r["user_id"] for r in history[long_first:long_last]} - {user_ids[long]}
    assert between, "round-robin: other athletes' turns come between the long history's turns"
    t0 = api[0]["ts"]
    long_span = f"{long_history[0]['ts'] - t0:.1f}s..{long_history[-1]['ts'] - t0:.1f}s"
    print(f"\n{len(api)} calls in {len(windows)} windows of {LIMIT}/{WINDOW:g}s")
    print(f"last head {last_head - t0:.1f}s, first history page {first_history - t0:.1f}s")
    print(f"long history {long_span}, the others' history done at {others_done - t0:.1f}s")


@pytest.mark.slow
@pytest.mark.parametrize("store", ["file", "sqlite"])
def test_two_concurrent_runs_with_many_athletes_lock_nobody_out(whoop_sandbox_factory, tmp_path, store):
    sandbox = whoop_sandbox_factory(seed=32, days=10, athletes=8, rate_limits=[])
    location = str(tmp_path / "tokens.json") if store == "file" else f"sqlite:///{tmp_path / 'tokens.sqlite'}"
    config = config_for(sandbox, location)
    user_ids = enroll(sandbox, config, range(8))
    sandbox.expire_access_tokens()  # both runs find every access token dead: each athlete needs a refresh
    sandbox.clear_log()
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    runs = [
        subprocess.Popen(
            [TAP, "--config", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=300) for run in runs]
    for run, (out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, err[-3000:]
        assert "invalid_grant" not in err
        records = [json.loads(line) for line in out.splitlines() if line.startswith('{"type":"RECORD"')]
        assert {m["record"]["user_id"] for m in records if m["stream"] == "cycles"} == set(user_ids)
    time.sleep(0.2)  # the sandbox logs a request just after answering it
    refreshes = [r for r in sandbox.request_log if r["path"] == "/oauth/oauth2/token"]
    assert all(r["status"] == 200 for r in refreshes)
    # One refresh per athlete between both runs: the second run found the first one's tokens.
    counts = {u: sum(r["user_id"] == u for r in refreshes) for u in user_ids}
    assert counts == dict.fromkeys(user_ids, 1)
