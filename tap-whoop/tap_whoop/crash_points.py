"""The points of a token refresh where the crash-safety tests kill the process (fault injection).

`reach(point)` does nothing in production; tests/test_token_crash.py replaces it in a child process to SIGKILL
that process at exactly `point` ("locked", "intent_saved", "response_received", "temp_written", "replaced",
"saved", "unlocked"), and then checks what the next run recovers.
"""


def reach(point: str) -> None:
    """The refresh has reached the crash point `point` (a no-op unless a test replaced it)."""
