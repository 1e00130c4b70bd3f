"""The pure parts: reconciliation's state and suspects, and a run's snapshot of the webhook event log."""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from tap_whoop.deletions import reconcile
from tap_whoop.deletions.events import WebhookEvent
from tap_whoop.deletions.feed import EventFeed
from tap_whoop.deletions.reconcile import Seen
from tap_whoop.stores import open_event_log
from tap_whoop.stores.events.log import EventLogError

T0 = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
LOGGER = logging.getLogger("tap-whoop")


def seen(key: str, days: float, deletion_id: str | None = None) -> Seen:
    return Seen(key, T0 + dt.timedelta(days=days), deletion_id or key)


def test_state_round_trip_and_shape():
    entries = [seen("a", 1), seen("123", 2, "sleep-uuid")]
    state = reconcile.dump(entries)
    assert state == {
        "seen": {"a": "2025-06-02T00:00:00.000Z", "123": ["2025-06-03T00:00:00.000Z", "sleep-uuid"]}
    }
    assert reconcile.load({"reconciliation": state}) == {s.key: s for s in entries}
    assert reconcile.load({}) == {}
    assert reconcile.load(
        {"reconciliation": {"seen": {"bad": "not a date", "ok": "2025-06-02T00:00:00Z"}}}
    ) == {"ok": seen("ok", 1)}


def test_state_is_bounded_to_the_newest(monkeypatch):
    monkeypatch.setattr(reconcile, "MAX_SEEN", 3)
    state = reconcile.dump(seen(str(day), day) for day in range(10))
    assert list(state["seen"]) == ["7", "8", "9"]


def test_suspects_are_missing_keys_inside_the_window():
    previous = {s.key: s for s in (seen("before", -1), seen("edge", 0), seen("inside", 3), seen("after", 10))}
    returned = {"inside-returned": seen("inside-returned", 4)}
    window = (T0, T0 + dt.timedelta(days=10))
    assert [s.key for s in reconcile.suspects(previous, returned, *window)] == ["edge", "inside"]
    assert [s.key for s in reconcile.suspects(previous, {"inside": seen("inside", 3)}, *window)] == ["edge"]
    assert len(reconcile.suspects(previous, {}, None, None)) == 4  # a first run reads everything


def test_next_seen_keeps_what_the_next_window_can_reach():
    previous = {
        s.key: s for s in (seen("old", -20), seen("unanswered", 3), seen("deleted", 4), seen("future", 12))
    }
    observed = {"new": seen("new", 5)}
    kept = reconcile.next_seen(previous, observed, gone={"deleted"}, keep_from=T0 - dt.timedelta(days=5))
    assert sorted(s.key for s in kept) == ["future", "new", "unanswered"]
    assert len(reconcile.next_seen(previous, observed, gone=(), keep_from=None)) == 5


def event(user_id: int = 7, kind: str = "sleep.deleted") -> WebhookEvent:
    return WebhookEvent(user_id, str(uuid.uuid4()), kind, str(uuid.uuid4()))


def test_feed_is_one_snapshot_per_run(tmp_path):
    log = open_event_log(str(tmp_path / "tokens.json"), "app")
    first, second = event(), event()
    log.append(first, T0)
    log.append(second, T0)
    feed = EventFeed(log, LOGGER)
    assert [e.event for e in feed.events(7, after=1)] == [second]
    log.append(event(), T0)  # arrives while the run goes on: next run's
    assert [e.event for e in feed.events(7, after=0)] == [first, second]  # a lower cursor: read again, capped
    assert feed.cursor_after(0) == feed.cursor_after(1) == 2
    assert feed.events(8, after=0) == []


def test_feed_reads_a_replaced_log_from_the_start(tmp_path, caplog):
    log = open_event_log(str(tmp_path / "tokens.json"), "app")
    only = event()
    log.append(only, T0)
    feed = EventFeed(log, LOGGER)
    assert [e.event for e in feed.events(7, after=50)] == [only]
    assert "before the tap's cursor 50" in caplog.text
    assert feed.cursor_after(50) == 1


def test_an_unreadable_log_keeps_the_cursor(tmp_path, caplog):
    class Broken:
        location = "broken://"

        def newest_seq(self) -> int:
            raise EventLogError("the database is down")

    feed = EventFeed(Broken(), LOGGER)  # type: ignore[arg-type]
    assert feed.events(7, after=4) == []
    assert feed.cursor_after(4) == 4
    assert "the database is down" in caplog.text
    assert EventFeed(None, LOGGER).events(7, after=0) == []


def test_unknown_athletes_are_reported_once_per_run(tmp_path, caplog):
    log = open_event_log(str(tmp_path / "tokens.json"), "app")
    log.append(event(user_id=7), T0)
    log.append(event(user_id=99), T0)
    log.append(event(user_id=99), T0 + dt.timedelta(hours=1))
    feed = EventFeed(log, LOGGER)
    feed.events(7, after=0)
    feed.report_unknown_athletes()
    assert "user_id 99 (2 event(s), newest 2025-06-01T01:00:00.000Z)" in caplog.text
    assert "user_id 7 " not in caplog.text
