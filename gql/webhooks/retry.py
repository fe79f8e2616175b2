"""When a failed delivery is tried again: exponential backoff with jitter over
about a day, or what the receiver's `Retry-After` asks for."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

JITTER = 0.25
"""Each delay is the nominal one ±25 %, so receivers coming back are not hit in step."""


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    base_s: float
    """The delay after the first failed attempt; it doubles after each."""
    max_s: float
    """No delay is longer (nor a `Retry-After`)."""
    max_attempts: int
    """After this many failed attempts the event is abandoned (kept, replayable)."""

    def nominal(self, failures: int) -> float:
        return min(self.max_s, self.base_s * 2.0 ** min(failures - 1, 62))

    def delay(
        self,
        failures: int,
        retry_after_s: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> float | None:
        """Seconds before the next attempt after `failures` failed ones; None: give up."""
        if failures >= self.max_attempts:
            return None
        if retry_after_s is not None:
            return min(self.max_s, max(0.0, retry_after_s))
        return self.nominal(failures) * (1 - JITTER + 2 * JITTER * rand())

    def schedule(self) -> list[float]:
        """The nominal delays between all attempts."""
        return [self.nominal(failures) for failures in range(1, self.max_attempts)]


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds: a number of seconds, or an HTTP date."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
