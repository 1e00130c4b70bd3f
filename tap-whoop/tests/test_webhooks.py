"""`POST /webhooks/whoop`: verified, durable before 2xx, once per trace_id; everything else stores nothing."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid

import pytest
from starlette.testclient import TestClient
from tap_whoop.service.app import create_app
from tap_whoop.service.logs import printable
from tap_whoop.service.webhooks import MAX_BODY_BYTES
from tap_whoop.stores import open_event_log
from tap_whoop.stores.events.log import EventLogError
from whoop_sandbox.webhooks import sign

SECRET = "fake-secret-for-webhook-tests"
# WHOOP's own example delivery (developer.whoop.com/docs/developing/webhooks, v2 model).
BODY = {
    "user_id": 456,
    "id": "550e8400-e29b-41d4-a716-446655440000",
    "type": "sleep.updated",
    "trace_id": "e369c784-5100-49e8-8098-75d35c47b31b",
}


@pytest.fixture
def config(tmp_path):
    return {"client_id": "fake-client", "client_secret": SECRET, "token_store": str(tmp_path / "tokens.json")}


@pytest.fixture
def client(config):
    with TestClient(create_app(config)) as test_client:
        yield test_client


@pytest.fixture
def stored(config):
    log = open_event_log(config["token_store"], config["client_id"])
    return lambda: [s.event.to_dict() for s in log.read()]


def deliver(client, body, *, secret=SECRET, timestamp=None, headers=None):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    stamp = str(int(time.time() * 1000) if timestamp is None else timestamp)
    signed = {
        "Content-Type": "application/json",
        "X-WHOOP-Signature": sign(secret, stamp, raw),
        "X-WHOOP-Signature-Timestamp": stamp,
    }
    return client.post("/webhooks/whoop", content=raw, headers={**signed, **(headers or {})})


def test_a_signed_event_is_stored_then_acknowledged(client, stored, caplog):
    caplog.set_level(logging.INFO, logger="tap-whoop.webhooks")
    response = deliver(client, BODY)
    assert response.status_code == 200
    assert response.json() == {"status": "stored"}
    assert stored() == [BODY]
    (line,) = [r.getMessage() for r in caplog.records if r.name == "tap-whoop.webhooks"]
    assert line == f"webhook type=sleep.updated user_id=456 trace_id={BODY['trace_id']} outcome=stored"


def test_a_duplicate_is_stored_once(client, stored):
    assert deliver(client, BODY).json() == {"status": "stored"}
    again = deliver(client, BODY)  # WHOOP's retry, or a duplicate: same trace_id
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate"}
    assert stored() == [BODY]


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("forged signature", 401),
        ("signed with another secret", 401),
        ("signature not base64", 401),
        ("no signature", 401),
        ("no timestamp", 401),
        ("timestamp not a number", 401),
        ("timestamp of non-ASCII digits", 401),
        ("timestamp of hundreds of digits", 401),
        ("stale timestamp", 401),
        ("timestamp from the future", 401),
        ("body tampered after signing", 401),
        ("oversized", 413),
        ("oversized without content-length", 413),
        ("malformed json", 400),
        ("not an object", 400),
        ("missing trace_id", 400),
        ("unknown type", 400),
        ("v1 integer id", 400),
        ("id not a uuid", 400),
        ("user_id a string", 400),
        ("user_id past 64 bits", 400),
        ("type a list", 400),
        ("type an object", 400),
        ("30,000 nested brackets", 400),
        ("trace_id with a line break", 400),
        ("trace_id with a NUL", 400),
    ],
)
def test_bad_deliveries_store_nothing(client, stored, case, status, caplog):
    caplog.set_level(logging.INFO, logger="tap-whoop.webhooks")
    now = int(time.time() * 1000)
    if case == "forged signature":
        response = deliver(client, BODY, headers={"X-WHOOP-Signature": "AAAA" + sign(SECRET, "1", b"")[4:]})
    elif case == "signed with another secret":
        response = deliver(client, BODY, secret="not-the-apps-secret")
    elif case == "signature not base64":
        response = deliver(client, BODY, headers={"X-WHOOP-Signature": "%%%not base64%%%"})
    elif case == "no signature":
        response = client.post(
            "/webhooks/whoop", json=BODY, headers={"X-WHOOP-Signature-Timestamp": str(now)}
        )
    elif case == "no timestamp":
        raw = json.dumps(BODY).encode()
        response = client.post(
            "/webhooks/whoop", content=raw, headers={"X-WHOOP-Signature": sign(SECRET, "", raw)}
        )
    elif case == "timestamp not a number":
        response = deliver(client, BODY, timestamp="soon")
    elif case == "timestamp of non-ASCII digits":  # str.isdigit() says yes, int() says no
        stamp = str(now)[:-1] + "\u00b2"
        raw = json.dumps(BODY).encode()
        response = client.post(
            "/webhooks/whoop",
            content=raw,
            headers={
                "X-WHOOP-Signature": sign(SECRET, stamp, raw),
                "X-WHOOP-Signature-Timestamp": stamp.encode("latin-1"),
            },
        )
    elif case == "timestamp of hundreds of digits":  # too large for a float
        response = deliver(client, BODY, timestamp="9" * 400)
    elif case == "stale timestamp":
        response = deliver(client, BODY, timestamp=now - 5 * 60 * 1000 - 5000)
    elif case == "timestamp from the future":
        response = deliver(client, BODY, timestamp=now + 5 * 60 * 1000 + 5000)
    elif case == "body tampered after signing":
        stamp = str(now)
        raw = json.dumps(BODY).encode()
        tampered = raw.replace(b"456", b"457")
        response = client.post(
            "/webhooks/whoop",
            content=tampered,
            headers={"X-WHOOP-Signature": sign(SECRET, stamp, raw), "X-WHOOP-Signature-Timestamp": stamp},
        )
    elif case == "oversized":
        response = deliver(client, {**BODY, "padding": "x" * MAX_BODY_BYTES})
    elif case == "oversized without content-length":
        raw = json.dumps({**BODY, "padding": "x" * MAX_BODY_BYTES}).encode()
        stamp = str(now)

        def chunks():
            for i in range(0, len(raw), 4096):
                yield raw[i : i + 4096]

        response = client.post(
            "/webhooks/whoop",
            content=chunks(),
            headers={"X-WHOOP-Signature": sign(SECRET, stamp, raw), "X-WHOOP-Signature-Timestamp": stamp},
        )
    elif case == "malformed json":
        response = deliver(client, b'{"user_id": 456, "id": ')
    elif case == "not an object":
        response = deliver(client, [BODY])
    elif case == "missing trace_id":
        response = deliver(client, {k: v for k, v in BODY.items() if k != "trace_id"})
    elif case == "unknown type":
        response = deliver(client, {**BODY, "type": "cycle.updated"})
    elif case == "v1 integer id":
        response = deliver(client, {**BODY, "id": 10235})
    elif case == "id not a uuid":
        response = deliver(client, {**BODY, "id": "abc"})
    elif case == "user_id a string":
        response = deliver(client, {**BODY, "user_id": "456"})
    elif case == "user_id past 64 bits":  # the file log could store it, a SQL log could not
        response = deliver(client, {**BODY, "user_id": 2**63})
    elif case == "type a list":
        response = deliver(client, {**BODY, "type": ["sleep.updated"]})
    elif case == "type an object":
        response = deliver(client, {**BODY, "type": {"sleep": "updated"}})
    elif case == "30,000 nested brackets":  # deeper than the JSON parser recurses, within 64 KiB
        response = deliver(client, b"[" * 30_000 + b"]" * 30_000)
    elif case == "trace_id with a line break":
        response = deliver(client, {**BODY, "trace_id": "abc\nwebhook type=sleep.deleted outcome=stored"})
    else:
        response = deliver(client, {**BODY, "trace_id": "abc\u0000"})  # PostgreSQL refuses NUL in text
    assert response.status_code == status, response.text
    assert "error" in response.json()
    assert stored() == []
    lines = [r.getMessage() for r in caplog.records if r.name == "tap-whoop.webhooks"]
    assert len(lines) == 1
    assert "outcome=rejected" in lines[0]
    assert SECRET not in lines[0]
    assert "padding" not in lines[0]


def test_v1_ids_get_a_hint_about_the_dashboard(client):
    response = deliver(client, {**BODY, "id": 10235})
    assert "v2" in response.json()["error"]


def test_every_event_type_is_accepted(client, stored):
    types = ["workout.updated", "workout.deleted", "sleep.updated", "sleep.deleted", "recovery.updated"]
    types.append("recovery.deleted")
    for kind in types:
        assert deliver(client, {**BODY, "type": kind, "trace_id": str(uuid.uuid4())}).status_code == 200
    assert [e["type"] for e in stored()] == types


def test_extra_fields_are_ignored_not_refused(client, stored):
    assert deliver(client, {**BODY, "new_field_whoop_added": True}).status_code == 200
    assert stored() == [BODY]


def test_a_store_failure_answers_503_so_whoop_retries(client, monkeypatch, caplog):
    from tap_whoop.stores.events.file import FileEventLog

    def broken(self, event, received_at):
        raise EventLogError("disk full")

    monkeypatch.setattr(FileEventLog, "append", broken)
    response = deliver(client, BODY)
    assert response.status_code == 503
    assert "outcome=failed" in caplog.text


def test_an_event_log_that_cannot_be_written_answers_503_in_one_line(config, client, stored, caplog):
    caplog.set_level(logging.INFO, logger="tap-whoop.webhooks")
    log_path = config["token_store"].replace("tokens.json", "tokens.events.jsonl")
    os.mkdir(log_path)  # in the way of the log (even for root, unlike a read-only mode)
    response = deliver(client, BODY)
    assert response.status_code == 503
    assert response.json() == {"error": "the event could not be stored; retry later"}
    (line,) = [r.getMessage() for r in caplog.records if r.name == "tap-whoop.webhooks"]
    assert "outcome=failed (Cannot write the event log" in line
    assert "Is a directory" in line
    assert not any(r.exc_info for r in caplog.records)  # the operator's fix, not a traceback


def test_log_lines_cannot_be_forged_by_what_a_client_sends(client, caplog):
    caplog.set_level(logging.INFO, logger="tap-whoop")
    forged = "abc\nwebhook type=sleep.deleted user_id=1 trace_id=x outcome=stored\r\x1b[2K"
    assert deliver(client, {**BODY, "trace_id": forged}).status_code == 400
    assert caplog.records
    for record in caplog.records:
        assert not any(c in record.getMessage() for c in "\n\r\x1b")
    assert printable(forged) == (
        "abc\\nwebhook type=sleep.deleted user_id=1 trace_id=x outcome=stored\\r\\x1b[2K"
    )
    assert printable("Zoë 💪") == "Zoë 💪"  # only what could break a line or a terminal is escaped


def test_only_post_is_allowed(client):
    assert client.get("/webhooks/whoop").status_code == 405


def test_events_go_to_a_sql_store_when_the_tokens_do(tmp_path):
    config = {"client_id": "c", "client_secret": SECRET, "token_store": f"sqlite:///{tmp_path / 'tokens.db'}"}
    with TestClient(create_app(config)) as client:
        assert deliver(client, BODY).status_code == 200
    assert [s.event.to_dict() for s in open_event_log(config["token_store"], "c").read()] == [BODY]
