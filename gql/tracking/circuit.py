"""One breaker for the whole RunPod endpoint, shared by every job follower.

Without it, N followed jobs would each find out on their own that RunPod is
down and each retry on their own schedule, so an outage would cost N times the
requests of one job. Once a request fails for want of RunPod, the breaker opens:
followers wait, a single probe goes out after a backoff, and the first answer
RunPod gives (any answer: a 404 or a 400 is still an answer) lets everyone
through again. An outage then costs one probe per backoff, however many jobs wait.
`trip` opens it on the first failed attempt, before the client's own retries of
that request are over, so new requests stop at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator

from clients.runpod import RunPodError, RunPodThrottled, RunPodUnavailable

logger = logging.getLogger(__name__)

# Longest pause between two probes of an unreachable endpoint: RunPod's return is
# noticed within this, at the cost of one request.
CIRCUIT_MAX_S = 10.0


def backoff(failures: int, *, base: float, cap: float) -> float:
    """Exponential backoff with full jitter on the upper half."""
    ceiling = min(cap, base * 2.0 ** max(0, failures - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


class EndpointCircuit:
    def __init__(self, *, base_s: float, cap_s: float) -> None:
        self._base = base_s
        self._cap = cap_s
        self._failures = 0
        self._retry_at = 0.0
        self._probing = False
        self._changed = asyncio.Event()

    def trip(self) -> None:
        """One attempt failed for want of RunPod: hold new requests back."""
        if not self._failures:
            self._failed(probe=False)

    @contextlib.asynccontextmanager
    async def admitted(self) -> AsyncIterator[None]:
        """Wait until a request may go out, then judge RunPod by how it went."""
        probe = await self._admit()
        try:
            yield
        except RunPodThrottled:
            self._answered()  # RunPod is there; the budget handles its limit
            raise
        except RunPodUnavailable:
            self._failed(probe=probe)
            raise
        except RunPodError:
            self._answered()
            raise
        except BaseException:
            # Cancelled before RunPod said anything: no verdict, let another probe go.
            if probe:
                self._probing = False
                self._notify()
            raise
        else:
            self._answered()

    async def _admit(self) -> bool:
        """True when the caller is the probe of an open breaker."""
        loop = asyncio.get_running_loop()
        while self._failures:
            wait = self._retry_at - loop.time()
            if wait <= 0 and not self._probing:
                self._probing = True
                return True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), wait if wait > 0 else None)
        return False

    def _failed(self, *, probe: bool) -> None:
        # Requests already in flight when RunPod went away fail too; only the first
        # failure opens the breaker and only failed probes lengthen the wait.
        if probe or not self._failures:
            self._failures += 1
            delay = backoff(self._failures, base=self._base, cap=self._cap)
            self._retry_at = asyncio.get_running_loop().time() + delay
            logger.warning(
                "RunPod unreachable; requests paused",
                extra={
                    "action": "circuit_open",
                    "failures": self._failures,
                    "retry_in_s": round(delay, 2),
                },
            )
        if probe:
            self._probing = False
        self._notify()

    def _answered(self) -> None:
        if self._failures:
            logger.info("RunPod answers again; requests resumed", extra={"action": "circuit_close"})
            self._failures = 0
            self._probing = False
            self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
