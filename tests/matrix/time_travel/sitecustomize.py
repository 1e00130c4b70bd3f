"""Moves every Python process of a test run to another date (on PYTHONPATH only for `make test-dates`).

`WHOOP_TEST_TIME_OFFSET` (seconds) is added to the wall clock of this process and, through the inherited
environment, of every Python process it starts (the tap, the sandbox command): all of them agree on the
moved time, and it advances in real time. An offset rather than a target instant, so that a child started a
minute later is not sent back to the start. time-machine moves `time.time`, `datetime.now` and friends but
not the monotonic clock, so timeouts and sleeps still behave (libfaketime 0.9.10 moves both, and Python's
timed waits then hang; with the monotonic clock left alone its `clock_nanosleep` fails with EINVAL).
"""

import os

_offset = os.environ.get("WHOOP_TEST_TIME_OFFSET")
if _offset:
    import time

    import time_machine

    _travel = time_machine.travel(time.time() + float(_offset), tick=True)
    _travel.start()
