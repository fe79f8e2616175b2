"""The values the WEBHOOK_* settings take: event types and the secrets' form."""

from __future__ import annotations

import base64
import binascii
from enum import StrEnum


class EventType(StrEnum):
    CREATED = "export.created"
    QUEUED = "export.queued"
    STARTED = "export.started"
    PROGRESS = "export.progress"
    """Throttled per job; a newer one replaces one still waiting."""
    COMPLETED = "export.completed"
    FAILED = "export.failed"
    CANCELLED = "export.cancelled"

    @property
    def is_final(self) -> bool:
        return self in {EventType.COMPLETED, EventType.FAILED, EventType.CANCELLED}


ALL_EVENTS = frozenset(EventType)
DEFAULT_EVENTS = ALL_EVENTS - {EventType.PROGRESS}

SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES, MAX_SECRET_BYTES = 24, 64


def secret_problem(secret: str) -> str | None:
    """What is wrong with a secret's form (never repeating it), or None."""
    if not secret.startswith(SECRET_PREFIX):
        return f"must start with {SECRET_PREFIX}"
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        return f"must be {SECRET_PREFIX} followed by base64"
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        return f"must encode {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes, got {len(key)}"
    return None
