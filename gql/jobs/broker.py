"""In-process fan-out of job changes to subscribers.

Changes arrive from this process's own writes and, through the change feed, from
other processes', in any order: each subscriber goes by the job's version, so a
late or repeated change never moves it backwards.

Each subscriber has a mailbox that keeps only the newest state per job: a job's
state is complete in every message, so a slow reader skips intermediate
progress instead of growing a queue, and memory per subscriber stays bounded.

A job may also be *nudged*: its row did not change, but what is derived from it
(its queue position, its estimate) did, so it is offered again as a refresh.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from gql.jobs.models import ExportJob
from gql.jobs.repository import JobFilter


@dataclass(frozen=True, slots=True)
class Update:
    job: ExportJob
    refresh: bool
    """The row is as sent before; a derived field (position, estimate) moved."""


class JobWatch:
    """One subscriber's view: the newest unseen state of each job it follows."""

    def __init__(self, broker: JobBroker, user_id: str, job_filter: JobFilter | None) -> None:
        self.user_id = user_id
        self.job_filter = job_filter
        self._broker = broker
        self._pending: dict[str, ExportJob] = {}
        self._seen_versions: dict[str, int] = {}
        self._refreshes: set[str] = set()
        self._ready = asyncio.Event()
        self._closed = False

    def offer(self, job: ExportJob) -> None:
        if job.version <= self._seen_versions.get(job.id, 0):
            return
        queued = self._pending.get(job.id)
        if queued is None or queued.version < job.version:
            self._pending[job.id] = job
            self._refreshes.discard(job.id)  # a change, not a refresh
            self._ready.set()

    def nudge(self, job: ExportJob) -> None:
        """Offer `job` again, as seen before: something derived from it moved."""
        seen = self._seen_versions.get(job.id)
        if seen is not None and job.version > seen:
            # Read from the database ahead of the change feed: a change, not a refresh.
            self.offer(job)
            return
        if job.id in self._pending or job.version < (seen or 0):
            return  # a newer state is on its way, or this one is stale
        self._pending[job.id] = job
        self._refreshes.add(job.id)
        self._ready.set()

    def mark_seen(self, job: ExportJob) -> None:
        """Skip states at or below this one (the subscriber already has it)."""
        self._seen_versions[job.id] = max(job.version, self._seen_versions.get(job.id, 0))
        queued = self._pending.get(job.id)
        if queued is not None and queued.version <= job.version:
            del self._pending[job.id]

    async def next_update(self) -> Update:
        while not self._pending:
            self._ready.clear()
            await self._ready.wait()
        job_id = next(iter(self._pending))
        job = self._pending.pop(job_id)
        refresh = job_id in self._refreshes
        self._refreshes.discard(job_id)
        self.mark_seen(job)
        return Update(job, refresh)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._broker._remove(self)


FirstWatch = Callable[[str | None, str | None], None]
"""Told (job id, None) or (None, user id) when a first subscriber of either arrives."""


class JobBroker:
    def __init__(self) -> None:
        self._by_job: dict[str, set[JobWatch]] = defaultdict(set)
        self._by_user: dict[str, set[JobWatch]] = defaultdict(set)
        self._job_of: dict[JobWatch, str] = {}
        self.on_first_watch: FirstWatch | None = None

    def watch_job(self, user_id: str, job_id: str) -> JobWatch:
        watch = JobWatch(self, user_id, None)
        first = job_id not in self._by_job
        self._by_job[job_id].add(watch)
        self._job_of[watch] = job_id
        if first and self.on_first_watch is not None:
            self.on_first_watch(job_id, None)
        return watch

    def watch_user(self, user_id: str, job_filter: JobFilter) -> JobWatch:
        watch = JobWatch(self, user_id, job_filter)
        first = user_id not in self._by_user
        self._by_user[user_id].add(watch)
        if first and self.on_first_watch is not None:
            self.on_first_watch(None, user_id)
        return watch

    def publish(self, job: ExportJob) -> None:
        for watch in self._by_job.get(job.id, ()):
            watch.offer(job)
        for watch in self._by_user.get(job.user_id, ()):
            if watch.job_filter is None or watch.job_filter.matches(job):
                watch.offer(job)

    def nudge(self, job: ExportJob) -> None:
        """Its queue position or estimate moved: every watch of it sees it again."""
        for watch in self._by_job.get(job.id, ()):
            watch.nudge(job)
        for watch in self._by_user.get(job.user_id, ()):
            if watch.job_filter is None or watch.job_filter.matches(job):
                watch.nudge(job)

    def watches(self, job_id: str, user_id: str) -> bool:
        """Whether any subscriber here may be offered this job's changes."""
        return job_id in self._by_job or user_id in self._by_user

    def watched_jobs(self) -> list[str]:
        return list(self._by_job)

    def watching_users(self) -> list[str]:
        return list(self._by_user)

    @property
    def subscriber_count(self) -> int:
        return len(self._job_of) + sum(len(watches) for watches in self._by_user.values())

    def _remove(self, watch: JobWatch) -> None:
        job_id = self._job_of.pop(watch, None)
        if job_id is not None:
            _discard(self._by_job, job_id, watch)
        else:
            _discard(self._by_user, watch.user_id, watch)


def _discard(index: dict[str, set[JobWatch]], key: str, watch: JobWatch) -> None:
    watches = index.get(key)
    if watches is not None:
        watches.discard(watch)
        if not watches:
            del index[key]
