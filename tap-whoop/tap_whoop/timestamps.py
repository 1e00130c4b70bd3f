"""WHOOP's timestamps: ISO 8601 in, UTC with millisecond precision and a `Z` out."""

from __future__ import annotations

import datetime as dt


def parse_datetime(value: str) -> dt.datetime:
    """Parse an ISO 8601 timestamp; naive values are taken as UTC."""
    parsed = dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def format_datetime(value: dt.datetime) -> str:
    """WHOOP's own timestamp format: UTC, millisecond precision, `Z` suffix."""
    utc = value.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
