"""The Meltano Singer SDK's standard tap tests, against a sandbox started for this class."""

from __future__ import annotations

import datetime as dt

import pytest
from singer_sdk.testing import SuiteConfig, get_tap_test_class
from tap_whoop.deletions.events import WebhookEvent
from tap_whoop.stores import open_event_log
from tap_whoop.tap import TapWhoop
from whoop_sandbox import Sandbox

# Time arithmetic: the date lane (make test-dates) runs this module at every date it tries.
pytestmark = pytest.mark.clock

# Filled in by the fixture below once the sandbox is up; the SDK's runner reads the same dict object.
CONFIG: dict = {"client_id": "pending", "client_secret": "pending", "start_date": "2020-01-01T00:00:00Z"}

_StandardTests = get_tap_test_class(
    TapWhoop,
    config=CONFIG,
    suite_config=SuiteConfig(max_records_limit=40),
    parse_env_config=False,
)


class TestTapWhoop(_StandardTests):
    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def _sandbox(cls, tmp_path_factory):
        with Sandbox(seed=7, days=30, athletes=1, rate_limits=[], workouts_at=(3,)) as sandbox:
            CONFIG.update(
                client_id=sandbox.client_id,
                client_secret=sandbox.client_secret,
                refresh_token=sandbox.grant_refresh_token(athlete=0),
                api_url=sandbox.api_url,
                token_url=sandbox.token_url,
                token_store=str(tmp_path_factory.mktemp("tokens") / "tokens.json"),
            )
            # A deletion WHOOP announced, so deleted_records has a record for the standard tests as well.
            workout = sandbox.record_near("workout", athlete=0, days_ago=3)
            sandbox.delete_record("workout", workout["id"])
            event = WebhookEvent(
                sandbox.athletes[0].user_id, workout["id"], "workout.deleted", "trace-standard"
            )
            open_event_log(CONFIG["token_store"], sandbox.client_id).append(event, dt.datetime.now(dt.UTC))
            yield sandbox
