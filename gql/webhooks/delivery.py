"""The delivery loop: claims due events from the outbox and sends them, each job's
in order, many jobs at once, on its own tasks (a slow receiver holds up nothing
but its own deliveries).

A process's claims last while it is registered (as its job leases do): the
events a killed process was sending are claimed by another once it is gone, and
sent again under the same `webhook-id`.

Each loop also deletes the events that ended more than the retention ago, ten
times per retention period and at most once an hour: nothing is kept much past
it, and any process may do it (the deletes of two do not collide).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable

from gql.config.webhook_values import EventType
from gql.observability import metrics
from gql.webhooks.events import with_signed_urls
from gql.webhooks.outbox import Outbox, OutboxEvent
from gql.webhooks.retry import RetryPolicy
from gql.webhooks.sender import Attempt, WebhookSender

logger = logging.getLogger(__name__)

GONE_REASON = "the receiver answered 410 Gone"
# Ended events are pruned at least this often.
PRUNE_MAX_PERIOD_S = 3600.0


class DeliveryLoop:
    def __init__(
        self,
        outbox: Outbox,
        sender: WebhookSender,
        *,
        retry: RetryPolicy,
        poll_interval_s: float,
        concurrency: int,
        retention_s: float,
        download_url: Callable[[str], str | None],
    ) -> None:
        """`poll_interval_s`: how often the outbox is read for events written by
        other processes or come due; events written here wake the loop at once."""
        self._outbox = outbox
        self._sender = sender
        self._retry = retry
        self._poll_s = poll_interval_s
        self._concurrency = concurrency
        self._download_url = download_url
        self._wakeup = asyncio.Event()
        self._sending: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._gone: str | None = None
        self._gone_checked_at = -math.inf
        # Claims of deliveries that broke off, to give back (`_release_stranded`).
        self._stranded: set[int] = set()
        self._retention_s = retention_s
        self._prune_period_s = min(PRUNE_MAX_PERIOD_S, retention_s / 10)
        self._next_prune = -math.inf

    def wake(self) -> None:
        """Look at the outbox now (an event was written, or a delivery ended)."""
        self._wakeup.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="webhook-delivery")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._sending) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # What was being sent is owed still: any process may claim it now.
        with contextlib.suppress(Exception):
            await self._outbox.release()
        await self._sender.aclose()

    async def _run(self) -> None:
        while True:
            self._wakeup.clear()
            try:
                await self._prune_if_due()
                wait_s = await self._turn()
            except Exception:
                logger.exception("webhook delivery pass failed", extra={"action": "webhook"})
                wait_s = self._poll_s
            if wait_s > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), wait_s)

    async def _turn(self) -> float:
        """Claim and start what is due; how long to wait before the next look."""
        await self._release_stranded()
        free = self._concurrency - len(self._sending)
        claimed = await self._outbox.claim(free) if free > 0 else []
        settled: set[int] = set()
        try:
            gone = await self._receiver_gone() if claimed else None
            for event in claimed:
                if gone is not None:
                    await self._abandon_unsent(event, gone)
                else:
                    task = asyncio.create_task(
                        self._deliver(event), name=f"webhook:{event.webhook_id}"
                    )
                    self._sending.add(task)
                    task.add_done_callback(self._sent)
                settled.add(event.seq)
        except Exception:
            # Claimed, but neither started nor settled: owed still, given back next turn.
            self._stranded.update(event.seq for event in claimed if event.seq not in settled)
            raise
        if claimed:
            # More may be due (a full batch), or will be once these end, which wakes us.
            return 0.0 if len(claimed) == free else self._poll_s
        backlog = await self._outbox.backlog()
        metrics.WEBHOOK_OLDEST_UNDELIVERED.set(backlog.oldest_age_s or 0.0)
        due_in = backlog.next_due_in_s
        if due_in is None or due_in <= 0:
            # Nothing due, or what is due waits behind a delivery whose end wakes us.
            return self._poll_s
        return min(self._poll_s, due_in)

    async def _prune_if_due(self) -> None:
        """Delete the ended events past their retention, when due."""
        now = time.monotonic()
        if now < self._next_prune:
            return
        self._next_prune = now + self._prune_period_s
        pruned = await self._outbox.prune(self._retention_s)
        if pruned:
            logger.info(
                "ended webhook events pruned",
                extra={"action": "webhook_prune", "count": pruned},
            )

    async def _receiver_gone(self) -> str | None:
        """Why the receiver is disabled (a 410), read at most once per poll interval:
        another process's 410 is heeded within one."""
        now = time.monotonic()
        if now >= self._gone_checked_at + self._poll_s:
            self._gone = await self._outbox.disabled_reason(self._sender.url)
            self._gone_checked_at = now
        return self._gone

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        self.wake()

    async def _release_stranded(self) -> None:
        """Give back the claims of deliveries that broke off (the database was away),
        so they are sent again rather than held by this process until it stops."""
        for seq in sorted(self._stranded):
            await self._outbox.release_one(seq)
            self._stranded.discard(seq)

    async def _deliver(self, event: OutboxEvent) -> None:
        try:
            await self._attempt(event)
        except Exception:
            fields = {"action": "webhook", "webhook_id": event.webhook_id, "job": event.job_id}
            logger.exception("webhook delivery broke off", extra=fields)
            self._stranded.add(event.seq)

    async def _attempt(self, event: OutboxEvent) -> None:
        body = event.payload
        if event.type == EventType.COMPLETED and event.output_key:
            # Signed now, so a delivery retried hours later still carries a live URL.
            body = with_signed_urls(body, event.output_key, self._download_url)
        attempt = await self._sender.send(event.webhook_id, body)
        metrics.WEBHOOK_ATTEMPTS.labels(attempt.outcome).inc()
        metrics.WEBHOOK_REQUEST_SECONDS.observe(attempt.seconds)
        fields = {
            "action": "webhook",
            "webhook_id": event.webhook_id,
            "job": event.job_id,
            "type": event.type,
            "attempt": event.attempts + 1,
            "status": attempt.status,
        }
        if attempt.delivered:
            assert attempt.status is not None
            latency = await self._outbox.delivered(event, attempt.status)
            if latency is not None:
                metrics.WEBHOOK_DELIVERIES.labels("delivered").inc()
                metrics.WEBHOOK_DELIVERY_SECONDS.observe(max(0.0, latency))
            logger.info("webhook delivered", extra=fields)
            return
        await self._failed(event, attempt, fields)

    async def _failed(
        self, event: OutboxEvent, attempt: Attempt, fields: dict[str, object]
    ) -> None:
        error = attempt.error or "failed"
        if attempt.gone:
            await self._outbox.disable(self._sender.url, GONE_REASON)
            self._gone = GONE_REASON
            logger.warning(
                "webhook receiver answered 410 Gone: nothing more is sent to it until a replay",
                extra=fields,
            )
            retry_in = None
        else:
            retry_in = self._retry.delay(event.attempts + 1, attempt.retry_after_s)
        await self._outbox.not_delivered(
            event, retry_in_s=retry_in, status=attempt.status, error=error
        )
        if retry_in is None:
            metrics.WEBHOOK_DELIVERIES.labels("abandoned").inc()
            logger.warning("webhook abandoned", extra={**fields, "error": error})
        else:
            logger.warning(
                "webhook attempt failed",
                extra={**fields, "error": error, "retry_in_s": round(retry_in, 3)},
            )

    async def _abandon_unsent(self, event: OutboxEvent, reason: str) -> None:
        await self._outbox.not_delivered(
            event, retry_in_s=None, status=None, error=f"not sent: {reason}", attempted=False
        )
        metrics.WEBHOOK_DELIVERIES.labels("abandoned").inc()
        logger.warning(
            "webhook abandoned unsent",
            extra={"action": "webhook", "webhook_id": event.webhook_id, "job": event.job_id},
        )
