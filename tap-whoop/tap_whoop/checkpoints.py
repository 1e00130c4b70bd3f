"""Named steps of a token refresh, for the crash-safety tests.

`reach(step)` is a no-op in production; the tests replace it in a child process to SIGKILL it at exactly that
step ("locked", "intent_saved", "response_received", "temp_written", "replaced", "saved", "unlocked").
"""


def reach(step: str) -> None:
    """The refresh has reached `step` (a no-op unless a test replaced it)."""
