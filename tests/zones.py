"""The machine zones the pipeline's own processes run in during the suite.

Every time the pipeline writes or compares must be UTC (or carry its offset) whatever the machine's zone, and
UTC, CI's zone, is the one zone where getting it wrong shows nothing. So the suite runs each pipeline it
builds, once, on a machine far from UTC: the tests' processes (tap, target, dbt, Meltano, Airflow) get AHEAD
or BEHIND as TZ, while the test itself checks what they wrote against UTC. `make test-pythons` runs the tap on
each Python in one of ALL (the fast suite on all but the oldest: tap-whoop/noxfile.py); `make test-timezones`
the tap's and the sandbox's in each of ALL; `make test-all` everything in each (WHOOP_TEST_ZONE, set by
tests/matrix/timezones.py --full, then puts every pipeline in that one zone).
"""

import os

_ONE = os.environ.get("WHOOP_TEST_ZONE")
# UTC+14, a day ahead (the Snowflake path's incremental merge once failed here)
AHEAD = _ONE or "Pacific/Kiritimati"
BEHIND = _ONE or "Pacific/Pago_Pago"  # UTC-11, a day behind
# make test-timezones: both signs, as far from UTC as zones go, and an offset that is not a whole hour.
ALL = ("Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Kathmandu")
