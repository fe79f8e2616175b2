"""Webhook delivery of a finished job's /status body, in the background.

Like RunPod, a failed delivery is retried a few times; it never holds up the
job or the server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import httpx

logger = logging.getLogger(__name__)

RETRY_DELAYS_S = (1.0, 5.0)
"""Waits before the second and third attempts."""
TIMEOUT_S = 10.0


class WebhookSender:
    def __init__(self, *, retry_delays_s: Sequence[float] = RETRY_DELAYS_S) -> None:
        self._retry_delays_s = tuple(retry_delays_s)
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=TIMEOUT_S)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def send(self, url: str, body: dict[str, Any]) -> None:
        if self._client is None:
            logger.warning("webhook dropped: sender closed", extra={"action": "webhook_dropped"})
            return
        task = asyncio.create_task(self._deliver(self._client, url, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> None:
        log = {"job": body.get("id"), "url": url}
        for attempt, delay in enumerate((0.0, *self._retry_delays_s), start=1):
            await asyncio.sleep(delay)
            try:
                response = await client.post(url, json=body)
            except httpx.HTTPError as error:
                reason = type(error).__name__
            else:
                if response.is_success:
                    logger.info("webhook delivered", extra={"action": "webhook_delivered", **log})
                    return
                reason = f"HTTP {response.status_code}"
            logger.warning(
                "webhook attempt failed",
                extra={"action": "webhook_failed", "attempt": attempt, "reason": reason, **log},
            )
