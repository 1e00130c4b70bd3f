"""Fixtures for the dbt tests: Singer output of the real tap against the WHOOP sandbox, before and after WHOOP
changed data."""

from __future__ import annotations

import pytest
from whoop_sandbox import Sandbox

from .pipeline import ATHLETES, SingerLoads, extract, last_state


@pytest.fixture(scope="session")
def singer_loads(tmp_path_factory) -> SingerLoads:
    workdir = tmp_path_factory.mktemp("singer")
    with Sandbox(seed=11, days=30, athletes=ATHLETES, rate_limits=[]) as sandbox:
        first = tuple(extract(sandbox, a, workdir, "first", None) for a in range(ATHLETES))
        # What the second run must carry into the marts: late scoring, a past-dated workout, an edited sleep
        # and a cycle that closed while a new one began.
        sandbox.rescore_pending()
        sandbox.add_past_workout(athlete=0, days_ago=10)
        sandbox.edit_sleep(athlete=0, days_ago=5)
        sandbox.start_new_cycle(athlete=1)
        second = tuple(extract(sandbox, a, workdir, "second", last_state(first[a])) for a in range(ATHLETES))
    return SingerLoads(first, second)
