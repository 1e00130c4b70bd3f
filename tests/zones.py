"""The machine zones the pipeline's own processes run in during the suite.

Every time the pipeline writes or compares must be UTC (or carry its offset) whatever the machine's zone, and
UTC, CI's zone, is the one zone where getting it wrong shows nothing. So the suite runs each pipeline it
builds, once, on a machine far from UTC: the tests' processes (tap, target, dbt, Meltano, Airflow) get one of
these as TZ, while the test itself checks what they wrote against UTC. `make test-timezones` runs the fast
suites of the tap and the sandbox in all three; `make test-all` runs everything in each (WHOOP_TEST_ZONE, set
by tests/matrix/timezones.py --full, then puts every pipeline in that one zone).
"""

import os

_ONE = os.environ.get("WHOOP_TEST_ZONE")
# UTC+14, a day ahead (the Snowflake path's incremental merge once failed here)
AHEAD = _ONE or "Pacific/Kiritimati"
BEHIND = _ONE or "Pacific/Pago_Pago"  # UTC-11, a day behind
ODD = _ONE or "Asia/Kathmandu"  # UTC+5:45, not a whole hour
ALL = ("Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Kathmandu")
