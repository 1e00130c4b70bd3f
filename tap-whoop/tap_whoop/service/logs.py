"""What the service writes to its log of what clients sent."""

from __future__ import annotations


def printable(text: str) -> str:
    """`text` for a log line: control characters (line breaks above all) escaped, so a value sent by a
    client cannot end the line and forge the next one."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
