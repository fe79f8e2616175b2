"""Time as the service stores and compares it: aware UTC, written as fixed-width text."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def format_time(value: datetime | None) -> str | None:
    """Timestamps are stored as fixed-width UTC ISO text: portable and sortable."""
    if value is None:
        return None
    # isoformat is several times cheaper than strftime, and every job write formats five.
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(value)
