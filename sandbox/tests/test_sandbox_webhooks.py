"""Deletions of every kind and WHOOP's webhooks: signed deliveries, retries, duplicates and drops."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from whoop_sandbox.webhooks import sign

# Time arithmetic: the date lane (make test-dates) runs this module at every date it tries.
pytestmark = pytest.mark.clock

FAST_RETRIES = [0.05, 0.05, 0.05]


class Receiver:
    """A webhook endpoint on loopback that records every delivery; `answers` scripts its replies in order
    (an int is a status, a float seconds of silence before a 200), then it answers 200."""

    def __init__(self) -> None:
        self.deliveries: list[dict] = []
        self.answers: list[int | float] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.deliveries.append({"headers": dict(self.headers), "body": body})
                    answer = receiver.answers.pop(0) if receiver.answers else 200
                if isinstance(answer, float):
                    time.sleep(answer)
                    answer = 200
                self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/whoop"

    def events(self) -> list[dict]:
        with self.lock:
            return [json.loads(d["body"]) for d in self.deliveries]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    endpoint = Receiver()
    yield endpoint
    endpoint.close()


@pytest.fixture
def sandbox(whoop_sandbox_factory, receiver):
    sb = whoop_sandbox_factory(days=40, rate_limits=[])
    sb.configure_webhooks(receiver.url, retry_delays=FAST_RETRIES, timeout=2.0)
    return sb


@pytest.fixture
def api(sandbox, make_client):
    return make_client(sandbox)


def test_deleting_a_sleep_deletes_its_recovery_and_says_so_in_two_webhooks(sandbox, api, receiver):
    sleep = sandbox.record_near("sleep", athlete=0, days_ago=5)
    recovery = api.get(f"/v2/cycle/{sleep['cycle_id']}/recovery").json()
    assert recovery["sleep_id"] == sleep["id"]

    sandbox.delete_record("sleep", sleep["id"])

    assert api.get(f"/v2/activity/sleep/{sleep['id']}").status_code == 404
    assert api.get(f"/v2/cycle/{sleep['cycle_id']}/recovery").status_code == 404
    assert sleep["cycle_id"] not in {r["cycle_id"] for r in api.all_records("/v2/recovery")}
    assert api.get(f"/v2/cycle/{sleep['cycle_id']}").status_code == 200  # the cycle stays
    assert sandbox.wait_for_webhooks(10)
    user_id = sandbox.athletes[0].user_id
    assert sorted(e["trace_id"] for e in receiver.events()) == sorted(
        e["trace_id"] for e in sandbox.webhooks.events
    )
    assert [(e["type"], e["id"], e["user_id"]) for e in sandbox.webhooks.events] == [
        ("sleep.deleted", sleep["id"], user_id),
        ("recovery.deleted", sleep["id"], user_id),  # v2: a recovery is named by its sleep's UUID
    ]
    assert len({e["trace_id"] for e in receiver.events()}) == 2


@pytest.mark.parametrize(("kind", "days_ago"), [("workout", 3), ("cycle", 6), ("recovery", 8), ("sleep", 2)])
def test_every_kind_can_be_deleted(sandbox, api, receiver, kind, days_ago):
    record = sandbox.record_near(kind, athlete=0, days_ago=days_ago)
    key = record["cycle_id"] if kind == "recovery" else record["id"]
    sandbox.delete_record(kind, key)
    single = {
        "workout": f"/v2/activity/workout/{key}",
        "cycle": f"/v2/cycle/{key}",
        "recovery": f"/v2/cycle/{key}/recovery",
        "sleep": f"/v2/activity/sleep/{key}",
    }[kind]
    assert api.get(single).status_code == 404
    assert sandbox.wait_for_webhooks(10)
    types = [e["type"] for e in sandbox.webhooks.events]
    assert sorted(types) == sorted(e["type"] for e in receiver.events())
    expected = {"workout": ["workout.deleted"], "cycle": [], "recovery": ["recovery.deleted"]}
    assert types == expected.get(kind, ["sleep.deleted", "recovery.deleted"])
    if kind == "recovery":
        assert receiver.events()[0]["id"] == record["sleep_id"]


def test_deliveries_are_signed_as_whoop_signs_them(sandbox, receiver):
    before = time.time()
    workout = sandbox.add_past_workout(athlete=0, days_ago=12)
    assert sandbox.wait_for_webhooks(10)
    (delivery,) = receiver.deliveries
    headers = {k.lower(): v for k, v in delivery["headers"].items()}
    timestamp = headers["x-whoop-signature-timestamp"]
    assert before * 1000 - 1000 <= int(timestamp) <= time.time() * 1000 + 1000  # epoch milliseconds
    expected = base64.b64encode(
        hmac.new(
            sandbox.client_secret.encode(), timestamp.encode() + delivery["body"], hashlib.sha256
        ).digest()
    ).decode()
    assert (
        headers["x-whoop-signature"] == expected == sign(sandbox.client_secret, timestamp, delivery["body"])
    )
    assert headers["content-type"] == "application/json"
    body = json.loads(delivery["body"])
    assert set(body) == {"user_id", "id", "type", "trace_id"}
    assert body["type"] == "workout.updated"  # a create arrives as an updated event
    assert body["id"] == workout["id"]


def kind_of(view: dict) -> str:
    if "sport_name" in view:
        return "workout"
    if "nap" in view:
        return "sleep"
    return "recovery" if "sleep_id" in view else "cycle"


def test_changes_send_updated_webhooks(sandbox, api, receiver):
    edited = sandbox.edit_workout(athlete=0, days_ago=30)
    before = {w["id"]: w for w in api.all_records("/v2/activity/workout")}
    assert api.get(f"/v2/activity/workout/{edited['id']}").json() == edited
    sleep = sandbox.edit_sleep(athlete=0, days_ago=5)
    rescored = sandbox.rescore_pending()
    assert sandbox.wait_for_webhooks(10)
    events = [(e["type"], e["id"]) for e in sandbox.webhooks.events]  # in the order of the changes
    assert sorted(events) == sorted((e["type"], e["id"]) for e in receiver.events())  # delivered in parallel
    assert events[:2] == [("workout.updated", edited["id"]), ("sleep.updated", sleep["id"])]
    expected_rescored = [
        (f"{kind_of(r)}.updated", r["sleep_id"] if kind_of(r) == "recovery" else r["id"])
        for r in rescored
        if kind_of(r) != "cycle"  # cycles send no webhooks
    ]
    assert events[2:] == expected_rescored
    assert expected_rescored, "nothing was pending: the rescore check would be vacuous"
    assert before[edited["id"]]["updated_at"] == edited["updated_at"]


def test_edit_workout_relabels_it(sandbox, api):
    before = sandbox.record_near("workout", athlete=0, days_ago=30)
    edited = sandbox.edit_workout(athlete=0, days_ago=30)
    assert edited["id"] == before["id"]
    assert edited["sport_name"] != before["sport_name"]
    assert edited["updated_at"] > before["updated_at"]
    assert edited["start"] == before["start"]
    # Or the workout a test logged itself, by id (a record picked by age can be another one tomorrow).
    logged = sandbox.add_past_workout(athlete=0, days_ago=4)
    relabelled = sandbox.edit_workout(workout_id=logged["id"])
    assert (relabelled["id"], relabelled["start"]) == (logged["id"], logged["start"])
    assert relabelled["sport_name"] != logged["sport_name"]
    with pytest.raises(KeyError, match="no workout"):
        sandbox.edit_workout(workout_id="no-such-workout")


def test_a_deleted_record_can_be_served_again(sandbox, api, receiver):
    sleep = sandbox.record_near("sleep", athlete=0, days_ago=6)
    recovery = api.get(f"/v2/cycle/{sleep['cycle_id']}/recovery").json()
    sandbox.delete_record("sleep", sleep["id"])
    restored = sandbox.restore_record("sleep", sleep["id"])
    assert restored["updated_at"] > sleep["updated_at"]
    assert {k: v for k, v in restored.items() if k != "updated_at"} == {
        k: v for k, v in sleep.items() if k != "updated_at"
    }
    assert api.get(f"/v2/activity/sleep/{sleep['id']}").json() == restored
    again = api.get(f"/v2/cycle/{sleep['cycle_id']}/recovery").json()  # its recovery came back with it
    assert again["sleep_id"] == recovery["sleep_id"]
    assert again["updated_at"] > recovery["updated_at"]
    assert sandbox.wait_for_webhooks(10)
    types = [e["type"] for e in sandbox.webhooks.events]
    assert types == ["sleep.deleted", "recovery.deleted", "sleep.updated", "recovery.updated"]
    with pytest.raises(KeyError):
        sandbox.restore_record("sleep", sleep["id"])  # not deleted (any more)


def test_move_record_changes_its_dates_only(sandbox, api, receiver):
    workout = sandbox.add_past_workout(athlete=0, days_ago=4)  # scored, whatever today's history holds
    sandbox.wait_for_webhooks(10)
    receiver.deliveries.clear()
    moved = sandbox.move_record("workout", workout["id"], days_ago=30)
    assert moved["id"] == workout["id"]
    assert moved["start"] < workout["start"]
    assert moved["updated_at"] > workout["updated_at"]
    assert moved["score"] == workout["score"]
    assert api.get(f"/v2/activity/workout/{workout['id']}").json() == moved
    recent = api.all_records("/v2/activity/workout", start=workout["start"])
    assert workout["id"] not in {w["id"] for w in recent}  # out of a window that held it before
    assert sandbox.wait_for_webhooks(10)
    assert [(e["type"], e["id"]) for e in receiver.events()] == [("workout.updated", workout["id"])]
    with pytest.raises(ValueError, match="moved"):
        sandbox.move_record("cycle", sandbox.record_near("cycle", days_ago=3)["id"], days_ago=9)


def test_failed_deliveries_are_retried_then_given_up(sandbox, receiver):
    receiver.answers = [500, 503]
    event = sandbox.send_webhook("sleep.updated", "11111111-1111-4111-8111-111111111111")
    assert sandbox.wait_for_webhooks(10)
    attempts = [e for e in sandbox.webhooks.log if e["trace_id"] == event["trace_id"]]
    assert [(e["attempt"], e["status"], e["outcome"]) for e in attempts] == [
        (1, 500, "retrying"),
        (2, 503, "retrying"),
        (3, 200, "delivered"),
    ]
    assert event["trace_id"] in sandbox.webhooks.acknowledged()

    receiver.answers = [500] * 10
    event = sandbox.send_webhook("workout.deleted", "22222222-2222-4222-8222-222222222222")
    assert sandbox.wait_for_webhooks(10)
    attempts = [e for e in sandbox.webhooks.log if e["trace_id"] == event["trace_id"]]
    assert [e["outcome"] for e in attempts] == ["retrying"] * len(FAST_RETRIES) + ["gave_up"]
    assert event["trace_id"] not in sandbox.webhooks.acknowledged()


def test_a_slow_answer_counts_as_failed_and_is_retried(sandbox, receiver):
    sandbox.configure_webhooks(receiver.url, retry_delays=FAST_RETRIES, timeout=0.2)
    receiver.answers = [1.0]
    event = sandbox.send_webhook("recovery.updated", "33333333-3333-4333-8333-333333333333")
    assert sandbox.wait_for_webhooks(10)
    attempts = [e for e in sandbox.webhooks.log if e["trace_id"] == event["trace_id"]]
    assert attempts[0]["status"] is None
    assert attempts[0]["outcome"] == "retrying"
    assert attempts[-1]["outcome"] == "delivered"
    # The receiver got the slow one too: WHOOP's retry is a duplicate for whoever stored the first.
    assert [e["trace_id"] for e in receiver.events()].count(event["trace_id"]) == len(attempts)


def test_a_refused_connection_is_retried(whoop_sandbox_factory):
    sb = whoop_sandbox_factory(days=5, rate_limits=[])
    sb.configure_webhooks("http://127.0.0.1:9/nobody-listens", retry_delays=[0.01], timeout=1.0)
    event = sb.send_webhook("workout.updated", "44444444-4444-4444-8444-444444444444")
    assert sb.wait_for_webhooks(10)
    attempts = [e for e in sb.webhooks.log if e["trace_id"] == event["trace_id"]]
    assert [(e["status"], e["outcome"]) for e in attempts] == [(None, "retrying"), (None, "gave_up")]
    assert "error" in attempts[0]


def test_duplicates_and_drops_on_demand(sandbox, receiver):
    sandbox.inject_webhook_fault("duplicate", count=1, type_prefix="workout.")
    sandbox.inject_webhook_fault("drop", count=1, type_prefix="sleep.")
    duplicated = sandbox.send_webhook("workout.updated", "55555555-5555-4555-8555-555555555555")
    dropped = sandbox.send_webhook("sleep.deleted", "66666666-6666-4666-8666-666666666666")
    normal = sandbox.send_webhook("sleep.updated", "77777777-7777-4777-8777-777777777777")
    assert sandbox.wait_for_webhooks(10)
    traces = [e["trace_id"] for e in receiver.events()]
    assert traces.count(duplicated["trace_id"]) == 2
    assert dropped["trace_id"] not in traces
    assert traces.count(normal["trace_id"]) == 1
    faults = {e["trace_id"]: e["fault"] for e in sandbox.webhooks.events}
    assert faults == {
        duplicated["trace_id"]: "duplicate",
        dropped["trace_id"]: "drop",
        normal["trace_id"]: None,
    }
    with pytest.raises(ValueError, match="webhook fault"):
        sandbox.inject_webhook_fault("explode")


def test_events_wait_for_a_url_and_unknown_types_are_refused(whoop_sandbox_factory, receiver):
    sb = whoop_sandbox_factory(days=10, rate_limits=[])
    workout = sb.add_past_workout(athlete=0, days_ago=2)
    assert not sb.wait_for_webhooks(0.2)  # nowhere to deliver yet
    sb.configure_webhooks(receiver.url, retry_delays=FAST_RETRIES)
    assert sb.wait_for_webhooks(10)
    assert [e["id"] for e in receiver.events()] == [workout["id"]]
    with pytest.raises(ValueError, match="webhook type"):
        sb.send_webhook("cycle.updated", "1")


def test_webhooks_over_the_control_plane(sandbox, receiver):
    base = f"{sandbox.base_url}/_sandbox"
    configured = requests.post(
        f"{base}/configure_webhooks", json={"url": receiver.url, "retry_delays": [0.05]}, timeout=10
    ).json()["result"]
    assert configured["retry_delays"] == [0.05]
    sent = requests.post(
        f"{base}/send_webhook", json={"type": "workout.deleted", "id": "x", "user_id": 42}, timeout=10
    ).json()["result"]
    assert (
        requests.post(f"{base}/wait_for_webhooks", json={"timeout": 10}, timeout=20).json()["result"] is True
    )
    log = requests.get(f"{base}/webhooks", timeout=10).json()
    assert [e["trace_id"] for e in log["events"]] == [sent["trace_id"]]
    assert log["deliveries"][-1]["outcome"] == "delivered"
    assert receiver.events() == [
        {"user_id": 42, "id": "x", "type": "workout.deleted", "trace_id": sent["trace_id"]}
    ]
    bad = requests.post(f"{base}/configure_webhooks", json={"url": "ftp://x"}, timeout=10)
    assert bad.status_code == 400
