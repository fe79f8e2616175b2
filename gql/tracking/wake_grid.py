"""The shared grid followers wake on, and the sleep each one takes until its next step.

Wake-ups are rounded to a grid (`WAKE_GRID_S`, or a tenth of the poll interval if
finer), so the polls due in one slot go out in one pass of the event loop and
their answers, writes and pushes are handled in batches: with 300 jobs followed,
the process wakes twenty times a second for them rather than three hundred.
"""

from __future__ import annotations

import asyncio

WAKE_GRID_S = 0.05


def grid_for(poll_interval_s: float) -> float:
    return min(WAKE_GRID_S, poll_interval_s / 10)


class Alarm:
    """A follower's sleep until its next step: it ends after a delay, at the
    nearest point of the wake-up grid, or at once when rung (a webhook, a cancel).
    One timer and one future per sleep, and no task: with a thousand jobs
    followed this runs a thousand times a second."""

    __slots__ = ("_grid_s", "_rung", "_waiter")

    def __init__(self, grid_s: float) -> None:
        self._grid_s = grid_s
        self._rung = False
        self._waiter: asyncio.Future[None] | None = None

    def ring(self) -> None:
        self._rung = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def sleep(self, delay: float) -> bool:
        """Sleep `delay` seconds; True if rung meanwhile (or before)."""
        if not self._rung and delay > 0:
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            timer = loop.call_at(on_grid(loop.time() + delay, self._grid_s), _end_sleep, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        rung, self._rung = self._rung, False
        return rung


def on_grid(moment: float, grid_s: float) -> float:
    """The point of the wake-up grid nearest to `moment` (loop time, seconds).

    Nearest, not next: a poll that wakes a little late is due again one interval
    later, which rounds back onto its slot, so the period does not creep up."""
    return round(moment / grid_s) * grid_s


def _end_sleep(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
