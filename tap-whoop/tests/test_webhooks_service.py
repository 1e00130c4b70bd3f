"""`tap-whoop serve` receiving the sandbox's webhooks over the network, surviving SIGKILL mid-burst, and
a soak of deliveries while slow clients hold connections."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from tap_whoop.stores import open_event_log
from whoop_sandbox import Sandbox
from whoop_sandbox.webhooks import sign

pytestmark = pytest.mark.slow

TAP = str(Path(sys.executable).with_name("tap-whoop"))
BURST = 200


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Service:
    """`tap-whoop serve` as a child process on a fixed port (so it can be killed and started again there)."""

    def __init__(self, config_path: Path, port: int, log_path: Path) -> None:
        self.config_path, self.port, self.log_path = config_path, port, log_path
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks/whoop"

    def start(self) -> None:
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(
                [TAP, "--config", str(self.config_path), "serve", "--port", str(self.port)],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).raise_for_status()
                return
            except requests.RequestException:
                assert self.process.poll() is None, self.log_path.read_text()
                assert time.monotonic() < deadline, "serve did not start within 30 s"
                time.sleep(0.05)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(seed=7, days=20, athletes=1, rate_limits=[], workouts_at=(3, 15)) as sb:
        yield sb


@pytest.fixture(scope="module")
def service(sandbox, tmp_path_factory):
    """One service for the module (starting one is the slow part); each test looks at its own events."""
    tmp_path = tmp_path_factory.mktemp("serve")
    config = {
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
        "token_store": str(tmp_path / "tokens.json"),
    }
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    service = Service(config_path, free_port(), tmp_path / "serve.log")
    service.start()
    yield service
    service.stop()


def stored_events(service: Service, sandbox) -> list[dict]:
    log = open_event_log(str(service.config_path.parent / "tokens.json"), sandbox.client_id)
    return [s.event.to_dict() for s in log.read()]


def test_the_sandboxs_webhooks_land_in_the_event_log(sandbox, service):
    sandbox.configure_webhooks(service.url, retry_delays=[0.2, 0.5], timeout=5.0)
    already = {e["trace_id"] for e in stored_events(service, sandbox)}
    sleep = sandbox.record_near("sleep", athlete=0, days_ago=5)
    sandbox.delete_record("sleep", sleep["id"])
    workout = sandbox.add_past_workout(athlete=0, days_ago=9)
    sandbox.inject_webhook_fault("duplicate", type_prefix="workout.")
    edited = sandbox.edit_workout(athlete=0, days_ago=15)
    sandbox.inject_webhook_fault("drop", type_prefix="workout.")
    lost = sandbox.edit_workout(athlete=0, days_ago=3)
    assert sandbox.wait_for_webhooks(30)

    events = [e for e in stored_events(service, sandbox) if e["trace_id"] not in already]
    assert sorted((e["type"], e["id"]) for e in events) == sorted(
        [
            ("sleep.deleted", sleep["id"]),
            ("recovery.deleted", sleep["id"]),
            ("workout.updated", workout["id"]),
            ("workout.updated", edited["id"]),  # sent twice, stored once
        ]
    )
    assert lost["id"] not in {e["id"] for e in events}  # WHOOP lost that one: reconciliation's job
    assert {e["user_id"] for e in events} == {sandbox.athletes[0].user_id}
    lines = [line for line in service.log_path.read_text().splitlines() if "trace_id=" in line]
    mine = [line for line in lines if any(e["trace_id"] in line for e in events)]
    assert sum("outcome=stored" in line for line in mine) == 4
    assert sum("outcome=duplicate" in line for line in mine) == 1
    assert sandbox.client_secret not in service.log_path.read_text()


def test_sigkill_during_a_burst_loses_no_acknowledged_event(sandbox, service):
    # Scaled-down WHOOP retries: 5 more attempts over ~15 s, time enough to start the service again.
    sandbox.configure_webhooks(service.url, retry_delays=[0.5, 1, 2, 4, 8], timeout=5.0, concurrency=8)
    traces = [str(uuid.uuid4()) for _ in range(BURST)]
    for number, trace in enumerate(traces):
        kind = ("sleep.updated", "workout.deleted", "recovery.updated", "workout.updated")[number % 4]
        sandbox.send_webhook(kind, str(uuid.uuid4()), athlete=0, trace_id=trace)

    deadline = time.monotonic() + 60
    while len(sandbox.webhooks.acknowledged()) < BURST // 4:
        assert time.monotonic() < deadline, "the burst never got going"
        time.sleep(0.005)
    service.kill()  # mid-burst: deliveries in flight lose their connection
    acknowledged = sandbox.webhooks.acknowledged()
    assert len(acknowledged) < BURST, "the service was killed too late to test anything"
    on_disk = {e["trace_id"] for e in stored_events(service, sandbox)}  # (after the kill: nothing changes it)
    assert acknowledged <= on_disk, f"{len(acknowledged - on_disk)} acknowledged events were lost"

    service.start()  # WHOOP's retries deliver the rest
    assert sandbox.wait_for_webhooks(60)
    events = [e for e in stored_events(service, sandbox) if e["trace_id"] in set(traces)]
    assert sorted(e["trace_id"] for e in events) == sorted(traces)  # every one, each exactly once
    assert set(traces) <= sandbox.webhooks.acknowledged()
    failed = [e for e in sandbox.webhooks.log if e["outcome"] == "retrying" and e["trace_id"] in set(traces)]
    assert failed, "no delivery failed: the kill did not land mid-burst"


SOAK_DELIVERIES = 1000
SLOW_CLIENTS = 50
SOAK_SENDERS = 8
# Deliveries spread over ~10 s, past the service's 10 s deadlines: they go on while slow clients are cut.
SOAK_PAUSE_SECONDS = 0.08


class SlowClients(threading.Thread):
    """Connections that never finish a request: half of them trickle a head, half a declared 60 kB body,
    a byte each every half second; one the service drops is opened again, so all of them are always held."""

    HEAD = b"POST /webhooks/whoop HTTP/1.1\r\nHost: service\r\nX-Padding: "
    BODY = (
        b"POST /webhooks/whoop HTTP/1.1\r\nHost: service\r\nContent-Length: 60000\r\n"
        b"X-WHOOP-Signature: AAAA\r\nX-WHOOP-Signature-Timestamp: 1\r\n\r\n"
    )

    def __init__(self, port: int, count: int) -> None:
        super().__init__(daemon=True)
        self.port, self.count = port, count
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.reopened = 0
        self.cut: set[int] = set()  # which of them the service has cut at least once

    def _open(self, number: int) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        sock.sendall(self.HEAD if number % 2 else self.BODY)
        return sock

    def run(self) -> None:
        socks = [self._open(number) for number in range(self.count)]
        self.ready.set()
        while not self.stop.wait(0.5):
            for number, sock in enumerate(socks):
                try:
                    sock.send(b"x" if number % 2 else b"{")
                except OSError:  # the service cut it (as it should): hold another
                    sock.close()
                    socks[number] = self._open(number)
                    self.reopened += 1
                    self.cut.add(number)
        for sock in socks:
            sock.close()


def memory_kib(pid: int) -> dict[str, int]:
    """The process's resident memory now (VmRSS) and at its peak (VmHWM), in KiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {name: int(fields[name].split()[0]) for name in ("VmRSS", "VmHWM")}


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads memory from /proc (Linux)")
def test_soak_deliveries_while_slow_clients_hold_connections(sandbox, service):
    slow = SlowClients(service.port, SLOW_CLIENTS)
    slow.start()
    assert slow.ready.wait(30), "the slow clients could not connect"
    traces = [str(uuid.uuid4()) for _ in range(SOAK_DELIVERIES)]
    sessions = threading.local()
    user_id = sandbox.athletes[0].user_id

    def deliver(number: int) -> tuple[str, int]:
        if not hasattr(sessions, "session"):
            sessions.session = requests.Session()  # keep-alive, as WHOOP's sender would
        kind = ("sleep.updated", "workout.deleted", "recovery.updated", "workout.updated")[number % 4]
        body = json.dumps(
            {"user_id": user_id, "id": str(uuid.uuid4()), "type": kind, "trace_id": traces[number]}
        ).encode()
        stamp = str(int(time.time() * 1000))
        headers = {
            "Content-Type": "application/json",
            "X-WHOOP-Signature": sign(sandbox.client_secret, stamp, body),
            "X-WHOOP-Signature-Timestamp": stamp,
        }
        response = sessions.session.post(service.url, data=body, headers=headers, timeout=30)
        time.sleep(SOAK_PAUSE_SECONDS)
        return traces[number], response.status_code

    assert service.process is not None
    pid = service.process.pid
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(SOAK_SENDERS) as pool:
            warm_up = list(pool.map(deliver, range(100)))
            warm = memory_kib(pid)
            rest = list(pool.map(deliver, range(100, SOAK_DELIVERIES)))
        took = time.monotonic() - started
        deadline = time.monotonic() + 60
        while len(slow.cut) < SLOW_CLIENTS:  # the service's deadlines are 10 s (15 s for an unread body)
            assert time.monotonic() < deadline, f"{SLOW_CLIENTS - len(slow.cut)} slow clients held for 60 s"
            time.sleep(0.1)
        end = memory_kib(pid)
    finally:
        slow.stop.set()
        slow.join(timeout=30)

    answers = warm_up + rest
    acknowledged = {trace for trace, status in answers if status == 200}
    stored = [e["trace_id"] for e in stored_events(service, sandbox) if e["trace_id"] in set(traces)]
    assert sorted(stored) == sorted(acknowledged)  # every acknowledged event stored, once
    assert len(acknowledged) == SOAK_DELIVERIES, {status for _, status in answers if status != 200}
    # Bounded: 900 deliveries after the warm-up grow the process by a few MiB at most (each event adds an
    # entry to the file log's trace_id index: about 200 bytes).
    grown_mib = (end["VmRSS"] - warm["VmRSS"]) / 1024
    assert grown_mib < 32, f"the service grew by {grown_mib:.1f} MiB over {SOAK_DELIVERIES - 100} deliveries"
    assert end["VmHWM"] < 256 * 1024, f"peak memory {end['VmHWM'] // 1024} MiB"
    print(  # the figures the README quotes
        f"soak: {SOAK_DELIVERIES} deliveries in {took:.1f} s with {SLOW_CLIENTS} slow clients "
        f"({slow.reopened} cut and reopened); RSS {warm['VmRSS'] // 1024} -> {end['VmRSS'] // 1024} MiB, "
        f"peak {end['VmHWM'] // 1024} MiB"
    )
