"""The webhook event log, every backend: durable appends, one copy per trace_id, ordered seq, pruning.
(Snowflake: the production-path end-to-end tests store and read events through fakesnow.)"""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import subprocess
import sys
import threading
import uuid

import pytest
from tap_whoop.deletions.events import MAX_TRACE_ID_LENGTH, MAX_USER_ID, InvalidEvent, WebhookEvent
from tap_whoop.stores import open_event_log
from tap_whoop.stores.events.file import FileEventLog, event_log_path
from tap_whoop.stores.events.log import EventLogError, app_fingerprint
from tap_whoop.stores.events.sql import SqlEventLog

from .conftest import STORE_BACKENDS, postgres_url

# Time arithmetic: the date lane (make test-dates) runs this module at every date it tries.
pytestmark = pytest.mark.clock

CLIENT = "client-under-test"
T0 = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)


def event(kind: str = "sleep.updated", user_id: int = 456, trace: str | None = None) -> WebhookEvent:
    return WebhookEvent(user_id, str(uuid.uuid4()), kind, trace or str(uuid.uuid4()))


def locations(tmp_path) -> dict[str, str]:
    return {
        "file": str(tmp_path / "state" / "tokens.json"),
        "sqlite": f"sqlite:///{tmp_path / 'db' / 'tokens.sqlite'}",
        "duckdb": f"duckdb:///{tmp_path / 'db' / 'tokens.duckdb'}",
    }


@pytest.fixture(params=STORE_BACKENDS)
def log(request, tmp_path):
    if request.param == "postgres":
        return open_event_log(postgres_url(request), CLIENT)
    return open_event_log(locations(tmp_path)[request.param], CLIENT)


def test_an_empty_log_reads_empty(log):
    assert log.read() == []
    assert log.newest_seq() == 0


def test_events_live_where_the_tokens_live(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    default = open_event_log(None, CLIENT)
    assert isinstance(default, FileEventLog)
    assert default.location == str(tmp_path / "xdg" / "tap-whoop" / "tokens.events.jsonl")
    beside = open_event_log(str(tmp_path / "prod" / "tokens.json"), CLIENT)
    assert beside.location == str(tmp_path / "prod" / "tokens.events.jsonl")
    assert event_log_path(tmp_path / "tokens.json") == tmp_path / "tokens.events.jsonl"
    assert isinstance(open_event_log(f"sqlite:///{tmp_path}/t.db", CLIENT), SqlEventLog)


def test_append_read_dedupe_and_order(log):
    first, second = event(), event("workout.deleted", user_id=789)
    assert log.append(first, T0)
    assert log.append(second, T0 + dt.timedelta(seconds=1))
    duplicate = WebhookEvent(first.user_id, first.id, first.type, first.trace_id)
    assert not log.append(duplicate, T0 + dt.timedelta(seconds=2))  # WHOOP retried: stored once
    stored = log.read()
    assert [s.event for s in stored] == [first, second]
    assert stored[0].seq < stored[1].seq
    assert stored[0].received_at == T0
    assert log.read(after=stored[0].seq) == stored[1:]
    assert log.read(after=stored[1].seq) == []
    assert log.newest_seq() == stored[1].seq


def test_every_backend_stores_the_largest_event_the_service_accepts(log):
    """The service validates once (`WebhookEvent.from_payload`), before any log: what passes there must be
    storable everywhere, so a delivery never is acknowledged by the file log and a 500 in a SQL one."""
    largest = {
        "user_id": MAX_USER_ID,
        "id": str(uuid.uuid4()),
        "type": "recovery.deleted",
        "trace_id": "é💪" * (MAX_TRACE_ID_LENGTH // 2),
    }
    accepted = WebhookEvent.from_payload(largest)
    assert log.append(accepted, T0)
    assert [s.event for s in log.read()] == [accepted]
    for beyond in ({"user_id": MAX_USER_ID + 1}, {"trace_id": "x" * (MAX_TRACE_ID_LENGTH + 1)}):
        with pytest.raises(InvalidEvent):
            WebhookEvent.from_payload({**largest, **beyond})


def test_apps_sharing_a_store_see_only_their_own_events(tmp_path):
    where = locations(tmp_path)["file"]
    mine, theirs = open_event_log(where, CLIENT), open_event_log(where, "another-app")
    shared_trace = str(uuid.uuid4())
    assert mine.append(event(trace=shared_trace), T0)
    assert theirs.append(event(trace=shared_trace), T0)  # same trace id, other app: its own event
    assert len(mine.read()) == len(theirs.read()) == 1
    text = (tmp_path / "state" / "tokens.events.jsonl").read_text()
    assert CLIENT not in text  # the app is a fingerprint, not its (secret) client id
    assert app_fingerprint(CLIENT) in text


@pytest.mark.slow
def test_concurrent_appends_lose_nothing_and_never_reuse_a_seq(log):
    events = [event() for _ in range(16)]

    def store(batch):
        for item in batch:
            log.append(item, T0)

    threads = [threading.Thread(target=store, args=(events[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = log.read()
    assert sorted(s.event.trace_id for s in stored) == sorted(e.trace_id for e in events)
    assert len({s.seq for s in stored}) == len(stored)


APPEND_FROM_ANOTHER_PROCESS = """
import datetime as dt, sys, uuid
from tap_whoop.deletions.events import WebhookEvent
from tap_whoop.stores.events.file import FileEventLog
log = FileEventLog(sys.argv[1], sys.argv[2])
for trace in sys.argv[3:]:
    log.append(WebhookEvent(1, str(uuid.uuid4()), "sleep.updated", trace), dt.datetime.now(dt.UTC))
"""


@pytest.mark.slow
def test_file_log_is_exclusive_across_processes(tmp_path):
    path = str(tmp_path / "tokens.events.jsonl")
    traces = [str(uuid.uuid4()) for _ in range(45)]
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                APPEND_FROM_ANOTHER_PROCESS,
                path,
                app_fingerprint(CLIENT),
                *traces[i::3],
                *traces[:5],
            ]
        )
        for i in range(3)
    ]
    for worker in workers:
        assert worker.wait(timeout=60) == 0
    stored = FileEventLog(path, app_fingerprint(CLIENT)).read()
    assert sorted(s.event.trace_id for s in stored) == sorted(traces)  # the 5 sent by everyone: once each
    assert [s.seq for s in stored] == list(range(1, len(traces) + 1))


def test_file_log_is_private_and_ignores_then_repairs_a_torn_tail(tmp_path):
    log = open_event_log(str(tmp_path / "tokens.json"), CLIENT)
    first = event()
    assert log.append(first, T0)
    path = tmp_path / "tokens.events.jsonl"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    # A writer killed mid-line (never acknowledged): readers skip it, the next append cuts it off.
    with path.open("ab") as fh:
        fh.write(b'{"seq": 2, "app": "')
    assert [s.event for s in log.read()] == [first]
    second = event()
    fresh = open_event_log(str(tmp_path / "tokens.json"), CLIENT)  # a new process: nothing cached
    assert fresh.append(second, T0)
    assert [(s.seq, s.event) for s in fresh.read()] == [(1, first), (2, second)]
    assert all(json.loads(line) for line in path.read_text().splitlines())


def test_file_log_skips_a_corrupt_line(tmp_path, caplog):
    log = open_event_log(str(tmp_path / "tokens.json"), CLIENT)
    log.append(event(), T0)
    with (tmp_path / "tokens.events.jsonl").open("a") as fh:
        fh.write("not json\n")
    log.append(event(), T0)
    assert [s.seq for s in log.read()] == [1, 2]
    assert "skipping unreadable line 2" in caplog.text


def test_prune_keeps_the_newest_and_seq_never_restarts(log):
    old, older, newest = event(), event(), event()
    log.append(older, T0 - dt.timedelta(days=200))
    log.append(old, T0 - dt.timedelta(days=100))
    assert log.prune(T0) == 1  # both are past the cut, but the newest event always stays
    assert [s.event for s in log.read()] == [old]
    log.append(newest, T0)
    assert [s.seq for s in log.read()] == [2, 3]
    assert log.prune(T0 - dt.timedelta(days=150)) == 0
    assert not log.append(old, T0)  # still deduplicated after a prune


def test_file_log_never_follows_a_symlink_planted_where_it_will_be_created(tmp_path):
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("someone else's file\n")
    elsewhere.chmod(0o644)
    (tmp_path / "tokens.events.jsonl").symlink_to(elsewhere)
    log = open_event_log(str(tmp_path / "tokens.json"), CLIENT)
    with pytest.raises(EventLogError, match="symbolic link") as raised:
        log.append(event(), T0)
    assert str(tmp_path / "tokens.events.jsonl") in str(raised.value)
    assert "\n" not in str(raised.value)
    with pytest.raises(EventLogError, match="symbolic link"):
        log.read()
    assert elsewhere.read_text() == "someone else's file\n"
    assert stat.S_IMODE(os.stat(elsewhere).st_mode) == 0o644


def test_file_log_makes_a_loosened_file_private_again(tmp_path):
    path = tmp_path / "tokens.events.jsonl"
    path.touch(mode=0o644)
    path.chmod(0o644)  # whatever the umask: readable by everyone, as a careless copy leaves it
    log = open_event_log(str(tmp_path / "tokens.json"), CLIENT)
    assert log.append(event(), T0)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_file_log_that_cannot_be_written_says_so_in_one_line(tmp_path):
    (tmp_path / "tokens.events.jsonl").mkdir()  # in the way even for root, unlike a read-only mode
    log = open_event_log(str(tmp_path / "tokens.json"), CLIENT)
    with pytest.raises(EventLogError, match=r"Cannot write the event log .*\.events\.jsonl: Is a directory"):
        log.append(event(), T0)
