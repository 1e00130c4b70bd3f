"""Token stores without a server: durability, atomicity, exclusivity, recovery and redaction."""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
import time

import pytest
import sqlalchemy as sa
from tap_whoop.errors import TokenStoreError
from tap_whoop.stores import open_token_store
from tap_whoop.stores.tokens import sql
from tap_whoop.stores.tokens.file import FileTokenStore
from tap_whoop.stores.tokens.record import TokenKey, TokenRecord
from tap_whoop.stores.tokens.sql import SqlTokenStore

from .conftest import STORE_BACKENDS, postgres_url

KEY = TokenKey("client-under-test", "default")
FAKE_RT = "fake-refresh-token-for-tests"
FAKE_AT = "fake-access-token-for-tests"


def store_urls(tmp_path) -> dict[str, str]:
    return {
        "file": str(tmp_path / "state" / "tokens.json"),
        "sqlite": f"sqlite:///{tmp_path / 'db' / 'tokens.sqlite'}",
        "duckdb": f"duckdb:///{tmp_path / 'db' / 'tokens.duckdb'}",
    }


@pytest.fixture(params=STORE_BACKENDS)
def store(request, tmp_path):
    if request.param == "postgres":
        return open_token_store(postgres_url(request))
    return open_token_store(store_urls(tmp_path)[request.param])


def save(store, record: TokenRecord, key: TokenKey = KEY) -> TokenRecord:
    with store.transaction(key) as txn:
        assert txn.save(record)
    return record


def test_open_token_store_picks_backend_and_default_path(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    default = open_token_store(None)
    assert isinstance(default, FileTokenStore)
    assert default.location == str(tmp_path / "xdg" / "tap-whoop" / "tokens.json")
    assert isinstance(open_token_store(f"sqlite:///{tmp_path}/t.db"), SqlTokenStore)
    with pytest.raises(TokenStoreError, match="No SQLAlchemy driver"):
        open_token_store("nosuchdialect://host/db")


def test_unreachable_postgres_fails_in_one_line_naming_cause_and_fix(tmp_path):
    """A unix socket directory with no server in it: libpq's reason, and which settings to check."""
    url = f"postgresql://whoop:hunter2@/whoop?host={tmp_path}"
    with pytest.raises(TokenStoreError) as failure:
        open_token_store(url).load(KEY)
    message = str(failure.value)
    assert "\n" not in message
    assert "No such file or directory" in message
    assert "PGHOST" in message
    assert "hunter2" not in message


def test_round_trip_versions_and_keys(store):
    assert store.load(KEY) is None
    first = save(store, TokenRecord(FAKE_RT, FAKE_AT, time.time() + 3600, access_ttl=3600))
    loaded = store.load(KEY)
    assert (loaded.refresh_token, loaded.access_token) == (FAKE_RT, FAKE_AT)
    assert loaded.version == first.version >= 1
    save(store, TokenRecord(FAKE_RT + "-2"))
    assert store.load(KEY).refresh_token == FAKE_RT + "-2"
    assert store.load(KEY).version > first.version
    other = TokenKey("client-under-test", "athlete-2")  # per-athlete records side by side
    save(store, TokenRecord(FAKE_RT + "-athlete2"), other)
    assert store.load(other).refresh_token == FAKE_RT + "-athlete2"
    assert store.load(KEY).refresh_token == FAKE_RT + "-2"


def test_transactions_are_exclusive_across_threads(store):
    """Read-modify-write under the store's lock never loses an update (each thread appends one mark)."""
    save(store, TokenRecord("0"))

    def bump() -> None:
        with store.transaction(KEY) as txn:
            current = txn.record.refresh_token
            time.sleep(0.01)  # widen the race window
            txn.save(TokenRecord(f"{current}+"))

    threads = [threading.Thread(target=bump) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert store.load(KEY).refresh_token == "0" + "+" * 6


def test_file_store_is_private_and_leaves_no_temp_files(tmp_path):
    store = FileTokenStore(tmp_path / "new" / "dir" / "tokens.json")
    save(store, TokenRecord(FAKE_RT, FAKE_AT, time.time() + 60))
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    assert {p.name for p in store.path.parent.iterdir()} == {"tokens.json", "tokens.json.lock"}
    document = json.loads(store.path.read_text())
    assert document["format"] == 1
    assert document["tokens"][KEY.id]["refresh_token"] == FAKE_RT


def test_file_store_adopts_a_complete_newer_temp_file_and_drops_the_rest(tmp_path):
    store = FileTokenStore(tmp_path / "tokens.json")
    save(store, TokenRecord("old"))
    current = json.loads(store.path.read_text())
    newer = json.loads(json.dumps(current))
    newer["tokens"][KEY.id].update(refresh_token="from-killed-writer", version=2)
    (tmp_path / ".tokens.json.abc.tmp").write_text(json.dumps(newer))
    (tmp_path / ".tokens.json.def.tmp").write_text('{"format": 1, "tokens": {')  # torn write
    with store.transaction(KEY) as txn:
        assert txn.record.refresh_token == "from-killed-writer"
    assert store.load(KEY).refresh_token == "from-killed-writer"
    assert not list(tmp_path.glob(".tokens.json.*.tmp"))

    stale = json.loads(store.path.read_text())
    stale["tokens"][KEY.id].update(refresh_token="older", version=1)
    (tmp_path / ".tokens.json.ghi.tmp").write_text(json.dumps(stale))
    with store.transaction(KEY) as txn:
        assert txn.record.refresh_token == "from-killed-writer"
    assert not list(tmp_path.glob(".tokens.json.*.tmp"))


def test_corrupt_file_store_fails_clearly(tmp_path):
    path = tmp_path / "tokens.json"
    path.write_text(f'{{"format": 1, "tokens": {{"x": "{FAKE_RT}"')
    with pytest.raises(TokenStoreError) as err:
        FileTokenStore(path).load(KEY)
    assert str(path) in str(err.value)
    assert "tap-whoop auth" in str(err.value)
    assert FAKE_RT not in str(err.value)


def test_sql_store_table_file_mode_and_redacted_location(tmp_path):
    store = SqlTokenStore(f"sqlite:///{tmp_path / 'a' / 'tokens.sqlite'}")
    save(store, TokenRecord(FAKE_RT))
    assert stat.S_IMODE((tmp_path / "a" / "tokens.sqlite").stat().st_mode) == 0o600
    with sa.create_engine(store.url).connect() as conn:
        rows = conn.execute(sa.text("select client_id, athlete, version, lease_owner from tap_whoop_tokens"))
        assert [tuple(r) for r in rows] == [("client-under-test", "default", store.load(KEY).version, None)]
    snowflake = SqlTokenStore("snowflake://user:hunter2@acct/db/schema")  # no connection is made here
    assert "hunter2" not in snowflake.location
    assert "hunter2" not in repr(snowflake)


def test_sql_store_takes_over_the_lease_of_a_dead_process(tmp_path):
    store = SqlTokenStore(f"sqlite:///{tmp_path / 'tokens.sqlite'}")
    save(store, TokenRecord(FAKE_RT))
    # A lease held by a process that no longer exists on this host (pid 2**22 + 1 is above pid_max).
    with store.engine.begin() as conn:
        dead = f"{socket.gethostname()}:4194305:dead"
        conn.execute(sa.update(store.table).values(lease_owner=dead, lease_until=time.time() + 600))
    started = time.monotonic()
    with store.transaction(KEY) as txn:
        assert txn.record.refresh_token == FAKE_RT
    assert time.monotonic() - started < 5


def test_sql_store_waits_for_a_live_lease_then_times_out(tmp_path, monkeypatch):
    store = SqlTokenStore(f"sqlite:///{tmp_path / 'tokens.sqlite'}")
    save(store, TokenRecord(FAKE_RT))
    with store.engine.begin() as conn:  # held by this (live) process under another owner id
        alive = f"{socket.gethostname()}:{os.getpid()}:other"
        conn.execute(sa.update(store.table).values(lease_owner=alive, lease_until=time.time() + 600))
    monkeypatch.setattr(sql, "LOCK_TIMEOUT_SECONDS", 0.5)
    with pytest.raises(TokenStoreError, match="lease"), store.transaction(KEY):
        pass
    # An expired lease is free even if its owner lives.
    with store.engine.begin() as conn:
        conn.execute(sa.update(store.table).values(lease_until=time.time() - 1))
    with store.transaction(KEY) as txn:
        assert txn.record.refresh_token == FAKE_RT


def test_records_and_keys_never_show_secrets():
    record = TokenRecord(FAKE_RT, FAKE_AT, time.time() + 60)
    record.remember_config_token(FAKE_RT)
    for text in (repr(record), str(record), repr(KEY), str(KEY)):
        assert FAKE_RT not in text
        assert FAKE_AT not in text
        assert "client-under-test" not in text
    assert FAKE_RT not in json.dumps(record.known_config_fingerprints)
    assert record.knows_config_token(FAKE_RT)
    assert not record.knows_config_token(FAKE_RT + "x")
    # Salted: the same token has a different fingerprint in another record.
    assert TokenRecord(None).fingerprint(FAKE_RT) != record.fingerprint(FAKE_RT)


def test_access_token_margin_scales_with_short_lifetimes():
    now = time.time()
    assert TokenRecord(FAKE_RT, FAKE_AT, now + 400, access_ttl=3600).access_token_valid(300)
    assert not TokenRecord(FAKE_RT, FAKE_AT, now + 200, access_ttl=3600).access_token_valid(300)
    # A 60 s token keeps 6 s of margin, not 300 s (or it would be refreshed before every request).
    assert TokenRecord(FAKE_RT, FAKE_AT, now + 50, access_ttl=60).access_token_valid(300)
    assert not TokenRecord(FAKE_RT, None, now + 5000).access_token_valid(300)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Arrow output:UserWarning")
def test_snowflake_store_through_fakesnow():
    """The Snowflake dialect (snowflake-sqlalchemy) end to end, with fakesnow standing in for Snowflake."""
    import fakesnow

    with fakesnow.patch():
        store = SqlTokenStore("snowflake://user:not-a-password@account/WHOOP/TOKENS")
        assert store.load(KEY) is None
        save(store, TokenRecord(FAKE_RT, FAKE_AT, time.time() + 3600))
        with store.transaction(KEY) as txn:
            assert txn.record.refresh_token == FAKE_RT
            # A compare-and-swap against a stale version changes nothing.
            assert not store._cas(txn.conn, KEY, txn.row_version - 1, payload="{}")
            assert txn.save(TokenRecord(FAKE_RT + "-2"))
        assert store.load(KEY).refresh_token == FAKE_RT + "-2"
        assert "not-a-password" not in store.location
