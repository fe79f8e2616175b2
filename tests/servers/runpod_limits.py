"""Rate limits of the fake RunPod endpoint, and the request timeline benches read.

RunPod limits each serverless endpoint's routes: requests accepted in a trailing
window (a sliding one) and requests in flight at once, answering 429 past either.
`RouteGate` holds one route's limit and what it counts against it: the times of
the requests it accepted within the window (a deque, O(1) amortised per request)
and the requests still in flight. `busiest_window` reads the kept timestamps of
all accepted requests afterwards.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

from tests.servers.runpod_models import RouteLimit


class RouteGate:
    """One route's limit; its counts outlive a change of the limit itself."""

    __slots__ = ("in_flight", "limit", "recent")

    def __init__(self, limit: RouteLimit) -> None:
        self.limit = limit
        self.recent: deque[float] = deque()
        self.in_flight = 0

    def admit(self, now: float) -> float | None:
        """None when the request may go on (it then holds a slot until `release`);
        otherwise the seconds until the window frees a slot (0 when only the
        concurrency cap refused it)."""
        limit = self.limit
        if limit.requests is not None:
            recent = self.recent
            horizon = now - limit.window_s
            while recent and recent[0] <= horizon:
                recent.popleft()
            if len(recent) >= limit.requests:
                return recent[0] - horizon
        if limit.concurrency is not None and self.in_flight >= limit.concurrency:
            return 0.0
        if limit.requests is not None:
            self.recent.append(now)
        self.in_flight += 1
        return None

    def release(self) -> None:
        self.in_flight -= 1

    def refusal(self, wait: float) -> tuple[str, int]:
        """The error message and Retry-After (whole seconds, at least 1) of a 429."""
        limit = self.limit
        if wait > 0:
            reason = f"more than {limit.requests} requests in {limit.window_s:g} s"
        else:
            reason = f"more than {limit.concurrency} requests at once"
        return f"rate limit exceeded: {reason}", max(1, math.ceil(wait))


def busiest_window(timestamps: Sequence[float], window_s: float) -> int:
    """The most timestamps (sorted) in any window (t - window_s, t]: the same window
    a gate counts, so a route limited to N per window_s never shows more than N."""
    busiest = start = 0
    for end, at in enumerate(timestamps):
        horizon = at - window_s  # computed as the gate does, to round alike
        while timestamps[start] <= horizon:
            start += 1
        busiest = max(busiest, end - start + 1)
    return busiest
