"""RunPod's request budget: per route, per process, in priority order.

RunPod limits each endpoint's routes (requests per 10 s and requests in flight;
past them it answers 429). Each route gets a token bucket whose rate is this
process's share of the cluster's budget, less a safety margin, and whose burst
is half a second of that rate, so no 10 s window ever holds more than the
share allows. Requests that find no token wait in priority order (a poll of a
job someone watches before one nobody does; FIFO within a priority). A 429
halves the route's rate and pauses it until `Retry-After`; each second without
one gives back a tenth of the full rate (additive increase, multiplicative
decrease). See the README, "Staying inside RunPod's limits".
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Protocol

from gql.observability import metrics

# A bucket holds at most this long of its rate: bursts stay small.
BURST_S = 0.5
# The lowest a run of 429s takes a route, as a fraction of its full rate.
MIN_FACTOR = 1 / 64
# Each second without a 429 gives back this fraction of the full rate.
RECOVERY_PER_S = 0.1
# A 429 without Retry-After pauses the route this long.
DEFAULT_PAUSE_S = 1.0


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Priority(IntEnum):
    """Who goes first when a route's budget binds (lower first)."""

    URGENT = 0
    """Someone waits on it now: a watched running job, a cancel, a duplicate run."""
    WATCHED = 1
    """A watched job still in RunPod's queue."""
    BACKGROUND = 2
    """Nobody watches: a safety net behind the webhook."""


@dataclass(frozen=True, kw_only=True)
class RouteLimit:
    """RunPod's limit of one route (its "rate limits" table), for the whole cluster."""

    requests: int
    """Requests per `window_s`."""
    window_s: float
    concurrency: int
    """Requests in flight at once."""


class RouteBudget:
    """One route's token bucket with priority waiters and AIMD on throttling."""

    def __init__(
        self,
        name: str,
        limit: RouteLimit,
        *,
        margin: float,
        clock: Callable[[], float] = time.monotonic,
        call_later: Callable[[float, Callable[[], None]], Cancellable] | None = None,
    ) -> None:
        """`clock` and `call_later` default to the running loop's; tests drive their own."""
        self.name = name
        self.limit = limit
        self._margin = margin
        self._clock = clock
        self._call_later = call_later
        self._share = 1.0
        # After a 429 the rate drops to this fraction, and climbs back from
        # `_recovery_from` on (see `factor`).
        self._throttled_factor = 1.0
        self._recovery_from = 0.0
        self._tokens = self.burst
        self._refilled_at = clock()
        self._paused_until = 0.0
        self._in_flight = 0
        self._waiters: list[tuple[tuple[int, float, int], asyncio.Future[None]]] = []
        self._arrivals = itertools.count()
        self._timer_handle: Cancellable | None = None
        self._timer_due = 0.0
        self.granted = 0
        self.throttled_count = 0

    # --- what the budget allows ---

    @property
    def full_rate(self) -> float:
        """Requests per second this process may send when RunPod does not push back."""
        allowed = self.limit.requests * (1 - self._margin) * self._share
        return allowed / (self.limit.window_s + BURST_S)

    @property
    def factor(self) -> float:
        """The fraction of the full rate allowed now: halved by each 429, then a
        tenth more back for each second without one."""
        if self._throttled_factor >= 1:
            return 1.0
        recovered = RECOVERY_PER_S * max(0, int(self._clock() - self._recovery_from))
        return min(1.0, self._throttled_factor + recovered)

    @property
    def rate(self) -> float:
        return self.full_rate * self.factor

    @property
    def burst(self) -> float:
        return max(1.0, self.rate * BURST_S)

    @property
    def concurrency(self) -> int:
        return max(1, int(self.limit.concurrency * (1 - self._margin) * self._share))

    @property
    def waiting(self) -> int:
        return sum(1 for _, waiter in self._waiters if not waiter.done())

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def set_share(self, share: float) -> None:
        """This process's fraction of the cluster's budget (1 / live processes)."""
        share = min(1.0, max(share, 1e-3))
        if share != self._share:
            self._refill()
            self._share = share
            self._tokens = min(self._tokens, self.burst)
            self._dispatch()

    # --- spending it ---

    @contextlib.asynccontextmanager
    async def slot(self, priority: Priority, order: float | None = None) -> AsyncIterator[None]:
        """Hold one request's token and place in flight while the block runs."""
        await self.acquire(priority, order)
        try:
            yield
        finally:
            self.release()

    async def acquire(self, priority: Priority, order: float | None = None) -> None:
        """Wait for a token; within a priority, by `order` (arrival when None)."""
        if not self._waiters and self._take():
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        arrival = next(self._arrivals)
        key = (int(priority), arrival if order is None else order, arrival)
        heapq.heappush(self._waiters, (key, waiter))
        queued_at = loop.time()
        self._dispatch()
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # granted just as it was cancelled: give it back
            raise
        metrics.RUNPOD_BUDGET_WAIT_SECONDS.labels(self.name, Priority(priority).name).observe(
            loop.time() - queued_at
        )

    def release(self) -> None:
        self._in_flight -= 1
        if self._waiters:
            self._dispatch()

    def throttled(self, retry_after: float | None) -> None:
        """RunPod answered 429: halve the rate and pause until it says."""
        now = self._clock()
        self.throttled_count += 1
        self._refill()
        self._throttled_factor = max(MIN_FACTOR, self.factor / 2)
        self._tokens = 0.0
        pause = retry_after if retry_after is not None else DEFAULT_PAUSE_S
        self._paused_until = max(self._paused_until, now + pause)
        self._recovery_from = self._paused_until
        self._dispatch()

    def health(self) -> dict[str, Any]:
        return {
            "limit_per_window": self.limit.requests,
            "window_s": self.limit.window_s,
            "share": round(self._share, 4),
            "rate_per_s": round(self.rate, 2),
            "full_rate_per_s": round(self.full_rate, 2),
            "concurrency": self.concurrency,
            "in_flight": self._in_flight,
            "waiting": self.waiting,
            "throttled": self.throttled_count,
        }

    # --- the bucket ---

    def _take(self) -> bool:
        self._refill()
        if self._tokens < 1 or self._in_flight >= self.concurrency:
            return False
        if self._clock() < self._paused_until:
            return False
        self._tokens -= 1
        self._in_flight += 1
        self.granted += 1
        return True

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._refilled_at)
        self._refilled_at = now
        if now < self._paused_until:
            return
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)

    def _dispatch(self) -> None:
        """Hand tokens to waiters, best priority first; wake again when the next is due."""
        while self._waiters:
            _, waiter = self._waiters[0]
            if waiter.done():  # cancelled while waiting
                heapq.heappop(self._waiters)
                continue
            if not self._take():
                break
            heapq.heappop(self._waiters)
            waiter.set_result(None)
        if not self._waiters or self._in_flight >= self.concurrency:
            return  # a release dispatches again
        now = self._clock()
        due = now + max(self._paused_until - now, (1 - self._tokens) / max(self.rate, 1e-9))
        if self._timer_handle is not None:
            if self._timer_due <= due:
                return  # already set to wake in time
            self._timer_handle.cancel()
        call_later = self._call_later or asyncio.get_running_loop().call_later
        self._timer_due = due
        self._timer_handle = call_later(max(due - now, 0.001), self._on_timer)

    def _on_timer(self) -> None:
        self._timer_handle = None
        self._dispatch()


class RequestBudget:
    """The budgets of RunPod's routes, by route name (`run`, `status`, `cancel`, `health`)."""

    def __init__(self, limits: Mapping[str, RouteLimit], *, margin: float) -> None:
        self.routes = {
            name: RouteBudget(name, limit, margin=margin) for name, limit in limits.items()
        }

    def route(self, name: str) -> RouteBudget | None:
        return self.routes.get(name)

    def set_share(self, share: float) -> None:
        for route in self.routes.values():
            route.set_share(share)

    @contextlib.asynccontextmanager
    async def admit(
        self, route: str, priority: int, order: float | None = None
    ) -> AsyncIterator[None]:
        budget = self.routes.get(route)
        if budget is None:
            yield
            return
        async with budget.slot(Priority(priority), order):
            yield

    def throttled(self, route: str, retry_after: float | None) -> None:
        budget = self.routes.get(route)
        if budget is not None:
            budget.throttled(retry_after)

    def health(self) -> dict[str, Any]:
        return {name: route.health() for name, route in self.routes.items()}

    def gauges(self) -> dict[Any, Callable[[], float]]:
        """The metrics sampled from these budgets (`metrics.GaugeSampler`)."""
        sources: dict[Any, Callable[[], float]] = {}
        for name, route in self.routes.items():
            sources[metrics.RUNPOD_BUDGET_LIMIT.labels(name)] = _reading(route, "full_rate")
            sources[metrics.RUNPOD_BUDGET_RATE.labels(name)] = _reading(route, "rate")
            sources[metrics.RUNPOD_BUDGET_WAITING.labels(name)] = _reading(route, "waiting")
        return sources


def _reading(route: RouteBudget, figure: str) -> Callable[[], float]:
    return lambda: float(getattr(route, figure))
