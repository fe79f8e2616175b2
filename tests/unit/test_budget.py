"""RunPod's request budget: the bucket, the order of waiters, the share and the back-off.

Time is a fake clock the tests move; nothing here depends on this machine's speed.
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
import itertools
from collections.abc import Callable

import pytest

from gql.tracking.budget import BURST_S, Priority, RouteBudget, RouteLimit

STATUS = RouteLimit(requests=2000, window_s=10.0, concurrency=400)


class FakeTime:
    """A clock and a timer queue that only move when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._timers: list[tuple[float, int, _Timer]] = []
        self._order = itertools.count()

    def clock(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[[], None]) -> _Timer:
        timer = _Timer(callback)
        heapq.heappush(self._timers, (self.now + delay, next(self._order), timer))
        return timer

    async def advance(self, seconds: float) -> None:
        """Move the clock, firing due timers in order, and let granted waiters run."""
        end = self.now + seconds
        while self._timers and self._timers[0][0] <= end:
            due, _, timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self.now = max(self.now, due)
            timer.callback()
            await _settle()
        self.now = end
        await _settle()


class _Timer:
    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def budget_on(time: FakeTime, limit: RouteLimit = STATUS, margin: float = 0.1) -> RouteBudget:
    return RouteBudget("status", limit, margin=margin, clock=time.clock, call_later=time.call_later)


async def spend(
    budget: RouteBudget, priority: Priority, granted: list[object], tag: object
) -> None:
    async with budget.slot(priority):
        granted.append(tag)


def test_the_rate_leaves_the_margin_and_a_burst_inside_every_window() -> None:
    budget = budget_on(FakeTime())
    # 2 000 per 10 s less 10 %, spread over the window and half a second of burst.
    assert budget.full_rate == pytest.approx(1800 / (10 + BURST_S))
    assert budget.full_rate * 10 + budget.burst <= 1800 + 1e-9
    assert budget.concurrency == 360


async def test_a_burst_gets_the_bucket_at_once_and_the_rest_at_the_rate() -> None:
    time = FakeTime()
    budget = budget_on(time)
    granted: list[object] = []
    tasks = [asyncio.create_task(spend(budget, Priority.URGENT, granted, n)) for n in range(300)]
    await _settle()
    assert len(granted) == int(budget.burst)
    await time.advance(1.0)
    assert len(granted) == pytest.approx(int(budget.burst) + budget.rate, abs=1)
    await time.advance(60.0)
    assert granted == list(range(300))  # first come, first served within a priority
    await asyncio.gather(*tasks)


async def test_no_ten_second_window_holds_more_than_the_budget() -> None:
    time = FakeTime()
    budget = budget_on(time)
    stamps: list[float] = []

    async def poll_forever() -> None:
        while True:
            async with budget.slot(Priority.BACKGROUND):
                stamps.append(time.now)

    pollers = [asyncio.create_task(poll_forever()) for _ in range(50)]
    await _settle()
    await time.advance(40.0)
    for poller in pollers:
        poller.cancel()
    await asyncio.gather(*pollers, return_exceptions=True)
    busiest = max(
        bisect.bisect_left(stamps, start + 10.0) - index for index, start in enumerate(stamps)
    )
    assert 1700 <= busiest <= 1800  # the whole budget is used, and never more


async def test_when_the_budget_binds_the_more_urgent_go_first() -> None:
    time = FakeTime()
    budget = budget_on(time, RouteLimit(requests=20, window_s=10.0, concurrency=20), margin=0)
    for _ in range(int(budget.burst)):
        await budget.acquire(Priority.URGENT)
        budget.release()
    granted: list[object] = []
    order = [
        (Priority.BACKGROUND, "unwatched-1"),
        (Priority.WATCHED, "queued-watched"),
        (Priority.BACKGROUND, "unwatched-2"),
        (Priority.URGENT, "running-watched"),
    ]
    tasks = [asyncio.create_task(spend(budget, p, granted, tag)) for p, tag in order]
    await _settle()
    assert granted == []
    await time.advance(10.0)
    assert granted == ["running-watched", "queued-watched", "unwatched-1", "unwatched-2"]
    await asyncio.gather(*tasks)


async def test_two_processes_each_spend_half() -> None:
    time = FakeTime()
    budget = budget_on(time)
    alone = budget.full_rate
    budget.set_share(1 / 2)
    assert budget.full_rate == pytest.approx(alone / 2)
    assert budget.concurrency == 180
    budget.set_share(1.0)
    assert budget.full_rate == pytest.approx(alone)


async def test_requests_in_flight_never_pass_the_concurrency_cap() -> None:
    time = FakeTime()
    limit = RouteLimit(requests=10_000, window_s=10.0, concurrency=3)
    budget = budget_on(time, limit, margin=0)
    release = asyncio.Event()
    in_flight: list[int] = []

    async def slow_request() -> None:
        async with budget.slot(Priority.URGENT):
            in_flight.append(budget.in_flight)
            await release.wait()

    tasks = [asyncio.create_task(slow_request()) for _ in range(10)]
    await time.advance(5.0)
    assert in_flight == [1, 2, 3]
    assert budget.waiting == 7
    release.set()
    await time.advance(5.0)
    await asyncio.gather(*tasks)
    assert max(in_flight) == 3 and len(in_flight) == 10


async def test_a_429_halves_the_rate_pauses_until_retry_after_then_recovers() -> None:
    time = FakeTime()
    budget = budget_on(time)
    full = budget.rate
    budget.throttled(retry_after=2.0)
    assert budget.rate == pytest.approx(full / 2)
    budget.throttled(retry_after=None)
    assert budget.rate == pytest.approx(full / 4)
    granted: list[object] = []
    task = asyncio.create_task(spend(budget, Priority.URGENT, granted, "after the pause"))
    await time.advance(1.9)
    assert granted == []  # Retry-After is honoured
    await time.advance(0.2)
    assert granted == ["after the pause"]
    await task
    await time.advance(4.0)  # a tenth of the full rate back each second without a 429
    assert budget.rate == pytest.approx(full * (1 / 4 + 4 / 10))
    await time.advance(10.0)
    assert budget.rate == pytest.approx(full)
