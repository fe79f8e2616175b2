"""Which jobs someone watches, anywhere in the cluster.

A job is watched while a subscriber follows it (`exportJob`) or all of its
user's jobs (`exportJobs`), on any process. Each process knows its own
subscribers (the broker); it tells the others on the change feed when a first
subscriber arrives, so the job's follower polls it at once, and then every
`announce_every_s` names all it watches, so a follower that takes a job over
learns soon enough. What another process announced counts until three
announcements are missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence

from gql.cluster.feed import ChangeFeed
from gql.jobs.broker import JobBroker
from gql.jobs.models import ExportJob

ANNOUNCE_EVERY_S = 2.0
# An announcement counts for this many periods.
ANNOUNCEMENT_LIFETIME = 3


class WatchRegistry:
    def __init__(
        self,
        broker: JobBroker,
        feed: ChangeFeed,
        *,
        announce_every_s: float = ANNOUNCE_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._broker = broker
        self._feed = feed
        self._every_s = announce_every_s
        self._clock = clock
        self._jobs_elsewhere: dict[str, float] = {}
        self._users_elsewhere: dict[str, float] = {}
        self._on_first: Callable[[str | None, str | None], None] | None = None
        self._task: asyncio.Task[None] | None = None
        broker.on_first_watch = self._first_here

    def on_first_watch(self, listener: Callable[[str | None, str | None], None]) -> None:
        """Told (job id, None) or (None, user id) when a job or a user's jobs gain
        their first subscriber, here or elsewhere."""
        self._on_first = listener

    def is_watched(self, job: ExportJob) -> bool:
        if self._broker.watches(job.id, job.user_id):
            return True
        now = self._clock()
        return (
            self._jobs_elsewhere.get(job.id, 0.0) > now
            or self._users_elsewhere.get(job.user_id, 0.0) > now
        )

    async def start(self) -> None:
        self._task = asyncio.create_task(self._keep_announcing(), name="watch-announcer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def heard(self, job_ids: Sequence[str], user_ids: Sequence[str], *, first: bool) -> None:
        """Another process's announcement."""
        until = self._clock() + ANNOUNCEMENT_LIFETIME * self._every_s
        for job_id in job_ids:
            self._jobs_elsewhere[job_id] = until
        for user_id in user_ids:
            self._users_elsewhere[user_id] = until
        if first and self._on_first is not None:
            for job_id in job_ids:
                self._on_first(job_id, None)
            for user_id in user_ids:
                self._on_first(None, user_id)

    def _first_here(self, job_id: str | None, user_id: str | None) -> None:
        self._feed.announce_watching(
            [job_id] if job_id else [], [user_id] if user_id else [], first=True
        )
        if self._on_first is not None:
            self._on_first(job_id, user_id)

    async def _keep_announcing(self) -> None:
        while True:
            await asyncio.sleep(self._every_s)
            self._forget_expired()
            jobs, users = self._broker.watched_jobs(), self._broker.watching_users()
            if jobs or users:
                self._feed.announce_watching(jobs, users, first=False)

    def _forget_expired(self) -> None:
        now = self._clock()
        for seen in (self._jobs_elsewhere, self._users_elsewhere):
            for name in [name for name, until in seen.items() if until <= now]:
                del seen[name]
