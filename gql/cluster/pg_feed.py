"""The change feed across processes on PostgreSQL: LISTEN/NOTIFY on one channel.

Each process holds one connection of its own (outside the pool) that listens on
the channel and also sends this process's messages. Messages are sent after the
job's row is committed, never inside the writing transaction: a transaction that
sends a NOTIFY takes a database-wide lock at commit, which would serialise every
job write. Messages queued while a send is in flight go out together, in one
statement, so a burst of changes costs one round trip.

When the connection drops (a restart, a failover, `pg_terminate_backend`), the
feed reconnects with backoff, listens again, then reads back from the database
every job this process's subscribers watch that changed since the connection was
last known good, and wakes its followers: a missed message never leaves anyone
stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import stamina

from gql.cluster.feed import (
    FeedEvents,
    FeedMessage,
    decode_message,
    freed_a_worker,
    job_message,
    signal_message,
    watch_messages,
)
from gql.jobs.broker import JobBroker
from gql.jobs.models import ExportJob
from gql.jobs.repository import JobRepository
from gql.observability import metrics

logger = logging.getLogger(__name__)

CHANNEL = "export_gql_changes"
# The feed's connection shows in pg_stat_activity as "export-gql feed <process id>".
APPLICATION_NAME = "export-gql feed"
# PostgreSQL refuses NOTIFY payloads of 8000 bytes or more.
MAX_PAYLOAD_BYTES = 7900
MAX_BATCH = 500
# An idle connection is checked this often, so a silently dead one is noticed.
WATCHDOG_S = 5.0
# Read back changes from this long before the connection was last known good.
CATCH_UP_MARGIN_S = 2.0
# The database may still be coming back when the feed is: keep trying this long.
CATCH_UP_TIMEOUT_S = 60.0
_NOTIFY_SQL = "SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload"
_CONNECTION_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


class PostgresFeed:
    def __init__(self, dsn: str, broker: JobBroker, repo: JobRepository, origin: str) -> None:
        self._dsn = dsn
        self._broker = broker
        self._repo = repo
        self._origin = origin
        self._events: FeedEvents | None = None
        self._connection: asyncpg.Connection | None = None
        self._outbox: list[str] = []
        self._wakeup = asyncio.Event()
        self._sent_all = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        # Wall-clock time the connection last did something: changes from then on
        # are read back after a reconnection.
        self._good_at = time.time()
        self._reconnects = 0

    # --- sending ---

    def publish(self, job: ExportJob) -> None:
        self._broker.publish(job)
        self._send(job_message(self._origin, job, max_bytes=MAX_PAYLOAD_BYTES))
        if self._events is not None and freed_a_worker(job):
            self._events.on_worker_freed()

    def wake_follower(self, job_id: str, reported_run: str | None) -> None:
        self._send(signal_message(self._origin, "wake", job_id, reported_run))

    def announce_available(self) -> None:
        self._send(signal_message(self._origin, "available"))

    def announce_watching(
        self, job_ids: Sequence[str], user_ids: Sequence[str], *, first: bool
    ) -> None:
        for message in watch_messages(
            self._origin, job_ids, user_ids, first=first, max_bytes=MAX_PAYLOAD_BYTES
        ):
            self._send(message)

    def _send(self, payload: str) -> None:
        self._outbox.append(payload)
        self._sent_all.clear()
        self._wakeup.set()

    # --- lifecycle ---

    async def start(self, events: FeedEvents) -> None:
        self._events = events
        await self._connect()
        self._runner = asyncio.create_task(self._run(), name="change-feed")

    async def stop(self) -> None:
        if self._runner is not None:
            # What is still queued goes out first (a departing process's releases).
            if self._outbox:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._sent_all.wait(), 2.0)
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        for task in list(self._background):
            task.cancel()
        if self._connection is not None:
            with contextlib.suppress(*_CONNECTION_ERRORS):
                await self._connection.close(timeout=2)
        self._connection = None

    def health(self) -> dict[str, Any]:
        connected = self._connection is not None and not self._connection.is_closed()
        return {
            "ok": connected,
            "kind": "postgresql",
            "connected": connected,
            "reconnects": self._reconnects,
            "unsent": len(self._outbox),
        }

    async def _connect(self) -> None:
        connection = await asyncpg.connect(
            self._dsn,
            server_settings={"application_name": f"{APPLICATION_NAME} {self._origin}"[:63]},
            timeout=10,
        )
        # A dropped connection wakes the pump, which then reconnects.
        connection.add_termination_listener(lambda _: self._wakeup.set())
        await connection.add_listener(CHANNEL, self._on_notification)
        self._connection = connection
        self._good_at = time.time()

    async def _run(self) -> None:
        while True:
            try:
                await self._pump()
            except _CONNECTION_ERRORS as error:
                logger.warning(
                    "change feed connection lost; reconnecting",
                    extra={"action": "feed_lost", "error": repr(error)},
                )
            lost_since = self._good_at
            await self._discard_connection()
            await self._reconnect()
            self._reconnects += 1
            metrics.FEED_RECONNECTS.inc()
            logger.info("change feed reconnected", extra={"action": "feed_restored"})
            self._spawn(self._catch_up(lost_since - CATCH_UP_MARGIN_S))

    async def _pump(self) -> None:
        """Send queued messages, or check an idle connection; returns when it is gone."""
        connection = self._connection
        assert connection is not None
        while not connection.is_closed():
            if not self._outbox:
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), WATCHDOG_S)
                if connection.is_closed():
                    break
                if not self._outbox:
                    await connection.fetchval("SELECT 1", timeout=WATCHDOG_S)
                    self._good_at = time.time()
                    continue
            batch = self._outbox[:MAX_BATCH]
            await connection.execute(_NOTIFY_SQL, CHANNEL, batch, timeout=WATCHDOG_S)
            # Kept until sent: after a reconnection the batch goes out again.
            del self._outbox[: len(batch)]
            self._good_at = time.time()
            if not self._outbox:
                self._sent_all.set()

    async def _discard_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.terminate()

    async def _reconnect(self) -> None:
        async for attempt in stamina.retry_context(
            on=_CONNECTION_ERRORS, attempts=None, timeout=None, wait_initial=0.05, wait_max=2.0
        ):
            with attempt:
                await self._connect()

    async def _catch_up(self, since: float) -> None:
        """Bring this process's subscribers and followers up to date after a gap."""
        async for attempt in stamina.retry_context(
            on=_CONNECTION_ERRORS, attempts=None, timeout=CATCH_UP_TIMEOUT_S, wait_max=2.0
        ):
            with attempt:
                jobs = await self._repo.get_many(self._broker.watched_jobs())
                users = self._broker.watching_users()
                if users:
                    jobs += await self._repo.changed_since(
                        users, datetime.fromtimestamp(since, UTC)
                    )
        for job in jobs:
            self._broker.publish(job)
        assert self._events is not None
        self._events.on_restored()
        logger.info("change feed caught up", extra={"action": "feed_caught_up", "jobs": len(jobs)})

    # --- receiving ---

    def _on_notification(self, connection: object, pid: int, channel: str, payload: object) -> None:
        message = decode_message(str(payload))
        if message is None or message.origin == self._origin:
            return
        now = time.time()
        self._good_at = now
        metrics.FEED_LAG_SECONDS.observe(max(0.0, now - message.sent_at))
        events = self._events
        assert events is not None
        if message.kind == "job":
            if message.freed:
                events.on_worker_freed()
            self._on_job(message, events)
        elif message.kind == "wake" and message.job_id is not None:
            events.on_wake(message.job_id, message.reported_run)
        elif message.kind == "available":
            events.on_available()
        elif message.kind == "watch":
            events.on_watching(message.watched_jobs, message.watching_users, first=message.first)

    def _on_job(self, message: FeedMessage, events: FeedEvents) -> None:
        job_id, user_id = message.job_id, message.user_id
        if job_id is None or user_id is None:
            return
        if not (self._broker.watches(job_id, user_id) or events.follows(job_id)):
            return  # nobody here cares: not even the row is decoded
        job = message.job()
        if job is None:
            self._spawn(self._read_and_deliver(job_id, events))
        else:
            self._deliver(job, events)

    async def _read_and_deliver(self, job_id: str, events: FeedEvents) -> None:
        job = await self._repo.get(job_id)
        if job is not None:
            self._deliver(job, events)

    def _deliver(self, job: ExportJob, events: FeedEvents) -> None:
        self._broker.publish(job)
        events.on_change(job)

    def _spawn(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning(
                "change feed read failed",
                extra={"action": "feed_read_failed", "error": repr(task.exception())},
            )
