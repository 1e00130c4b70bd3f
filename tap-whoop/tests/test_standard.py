"""The Meltano Singer SDK's standard tap tests, against a sandbox started for this class."""

from __future__ import annotations

import pytest
from singer_sdk.testing import SuiteConfig, get_tap_test_class
from tap_whoop.tap import TapWhoop
from whoop_sandbox import Sandbox

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
        with Sandbox(seed=7, days=30, athletes=1, rate_limits=[]) as sandbox:
            CONFIG.update(
                client_id=sandbox.client_id,
                client_secret=sandbox.client_secret,
                refresh_token=sandbox.grant_refresh_token(athlete=0),
                api_url=sandbox.api_url,
                token_url=sandbox.token_url,
                token_store=str(tmp_path_factory.mktemp("tokens") / "tokens.json"),
            )
            yield sandbox
