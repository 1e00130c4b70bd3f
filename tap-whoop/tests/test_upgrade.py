"""The upgrade from the single-athlete release: its token stores and state, adopted without re-authorization.

The release is the tap as it was before athletes were keyed by user_id (commit RELEASE: main just before
issue 12), taken from git and imported under another package name, so its own code writes the store and the
state the new tap then reads: every backend (file, SQLite, DuckDB, Snowflake through fakesnow), the access
token still valid (no refresh at all) or expired (exactly one refresh, never two),
bookmarks carried over as they were.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from tap_whoop.stores import open_token_store

from .conftest import API_ROOT, COLLECTION_PATHS, COLLECTIONS, PATHS, api_requests, bookmark, run_tap

# Time arithmetic: the date lane (make test-dates) runs this module at every date it tries.
pytestmark = pytest.mark.clock

# The last single-athlete tap (deletions and webhooks included): one token record under "<client_id>/default".
RELEASE = "3ea16a6"
REPO = Path(__file__).resolve().parents[2]
TOKEN_PATH = "/oauth/oauth2/token"
START = "2020-01-01T00:00:00Z"


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """The release's TapWhoop class, from git, as package `tap_whoop_release`."""
    dest = tmp_path_factory.mktemp("release")
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", RELEASE, "tap-whoop/tap_whoop"],
        capture_output=True,
        check=False,
    )
    assert archive.returncode == 0, f"commit {RELEASE} (the release) must be in the clone: {archive.stderr!r}"
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")
    package = dest / "tap_whoop_release"
    (dest / "tap-whoop" / "tap_whoop").rename(package)
    for source in package.rglob("*.py"):
        source.write_text(re.sub(r"\btap_whoop\b", "tap_whoop_release", source.read_text()))
    sys.path.insert(0, str(dest))
    try:
        yield importlib.import_module("tap_whoop_release.tap").TapWhoop
    finally:
        sys.path.remove(str(dest))
        for name in [m for m in sys.modules if m.startswith("tap_whoop_release")]:
            del sys.modules[name]


def run_release(tap_class, config: dict) -> dict:
    """One sync with the release; its last STATE message."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        tap_class(config=dict(config), parse_env_config=False).sync_all()
    states = [json.loads(line)["value"] for line in out.getvalue().splitlines() if '"type":"STATE"' in line]
    return states[-1]


def store_location(kind: str, tmp_path: Path) -> str:
    return {
        "file": str(tmp_path / "tokens.json"),
        "sqlite": f"sqlite:///{tmp_path / 'tokens.sqlite'}",
        "duckdb": f"duckdb:///{tmp_path / 'tokens.duckdb'}",
        "snowflake": "snowflake://user:not-a-password@account/WHOOP/TOKENS",
    }[kind]


# Every backend with a valid access token; the refresh path (the same code for every backend) on two of them.
# fakesnow takes seconds per statement: that case is `slow`.
CASES = [
    pytest.param(kind, expired, id=f"{kind}-{'token-expired' if expired else 'token-valid'}", marks=marks)
    for kind, expired, marks in [
        ("file", False, ()),
        ("sqlite", False, ()),
        ("duckdb", False, ()),
        ("snowflake", False, (pytest.mark.slow,)),
        ("file", True, ()),
        ("sqlite", True, ()),
    ]
]


@pytest.mark.filterwarnings("ignore:Arrow output:UserWarning")
@pytest.mark.parametrize(("kind", "expired"), CASES)
def test_release_store_and_state_are_adopted_without_reauthorization(
    release, whoop_sandbox_factory, make_config, tmp_path, kind, expired
):
    sandbox = whoop_sandbox_factory(seed=13, days=16, athletes=1, rate_limits=[])
    config = make_config(sandbox, start_date=START, token_store=store_location(kind, tmp_path))
    user_id = sandbox.athletes[0].user_id
    patch = __import__("fakesnow").patch() if kind == "snowflake" else contextlib.nullcontext()
    with patch:
        old_state = run_release(release, config)
        store = open_token_store(config["token_store"])
        assert set(store.records(config["client_id"])) == {"default"}, "the release's layout"
        if expired:
            sandbox.expire_access_tokens()
        sandbox.clear_log()

        # The unchanged configuration (the same refresh_token setting) and the release's state.
        upgraded = run_tap(config, state=old_state)
        assert upgraded.error is None, upgraded.error
        posts = [r for r in sandbox.request_log if r["path"] == TOKEN_PATH]
        assert len(posts) == (1 if expired else 0), "adopted with the tokens it had: no refresh spent twice"
        records = open_token_store(config["token_store"]).records(config["client_id"])
        assert set(records) == {str(user_id)}
        assert records[str(user_id)].status == "ok"
        assert records[str(user_id)].first_name == sandbox.athletes[0].profile["first_name"]
        for stream in COLLECTIONS:
            # The release's bookmark, partitioned by user_id, carries over: an incremental read, no head and
            # no history to read again.
            assert old_state["bookmarks"][stream]["partitions"][0]["context"] == {"user_id": user_id}
            # One window (a retry after an answer slower than the tests' short timeout repeats that request).
            starts = {r["params"]["start"] for r in api_requests(sandbox, COLLECTION_PATHS[stream])}
            assert len(starts) == 1, starts
            assert starts.pop() < bookmark(old_state, stream)
            [partition] = upgraded.state["bookmarks"][stream]["partitions"]
            assert "backfill_before" not in partition
            assert partition["replication_key_value"] >= bookmark(old_state, stream)
        # Whose tokens: one profile call (after a 401 for the access token WHOOP expired, one refresh).
        profile_calls = api_requests(sandbox, API_ROOT + PATHS["profile"])
        assert [r["status"] for r in profile_calls] == ([401, 200] if expired else [200])
        assert upgraded.records["profile"][0]["user_id"] == user_id

        # And from then on it is an ordinary enrolled athlete: nothing adopted, nothing refreshed.
        sandbox.clear_log()
        again = run_tap(config, state=upgraded.state)
        assert again.error is None
        assert [r for r in sandbox.request_log if r["path"] == TOKEN_PATH] == []
        assert api_requests(sandbox, API_ROOT + PATHS["profile"]) == []
