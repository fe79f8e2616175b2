"""Per-user limits on starting exports: every start is a paid GPU job.

Both are checked in the statement that records the job, under the user's lock
(see `JobRepository.insert`), so they hold exactly however many requests race,
on however many processes. An idempotent replay records nothing and so counts
nothing; a retry records a new job and counts as a start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from gql.jobs.errors import ErrorCode, ExportError, FieldError

RATE_WINDOW = timedelta(minutes=1)


@dataclass(frozen=True, kw_only=True)
class StartQuota:
    max_active: int
    """Unfinished exports (PENDING, QUEUED, PROCESSING) a user may have."""
    max_per_minute: int
    """Exports a user may start in any minute."""


@dataclass(frozen=True, kw_only=True)
class QuotaUsage:
    active: int
    recent: int
    """Exports started within the last minute."""
    oldest_recent: datetime | None


def refusal(quota: StartQuota, usage: QuotaUsage, now: datetime) -> ExportError | None:
    """Why a start is refused with this usage; None when it would fit."""
    if usage.active >= quota.max_active:
        return ExportError(
            FieldError(
                ErrorCode.TOO_MANY_ACTIVE_EXPORTS,
                f"{usage.active} of your exports are unfinished, the most allowed at once; "
                "start this one when one of them ends (or cancel one).",
            )
        )
    if usage.recent >= quota.max_per_minute and usage.oldest_recent is not None:
        # A slot frees when the oldest start of the window leaves it.
        wait = (usage.oldest_recent + RATE_WINDOW - now).total_seconds()
        retry_after = max(1, math.ceil(wait))
        return ExportError(
            FieldError(
                ErrorCode.RATE_LIMITED,
                f"At most {quota.max_per_minute} exports may be started per minute; "
                f"try again in {retry_after} s.",
                retry_after_s=retry_after,
            )
        )
    return None
