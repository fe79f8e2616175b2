"""Job streams in change order, resumable from a change cursor (`gql.jobs.cursor`).

A stream watches the broker first and reads the database second, so no change
falls between the two. The broker only wakes a user's stream: what it sends is
read from the database, every job changed after the last number sent, in
number order. Change numbers commit in order (`CHANGE_SEQ_LOCK`), so that read
never skips one still in flight, and a client that stops anywhere and resumes
from its last cursor misses nothing and is sent nothing twice, whichever
process it reconnects to and in whatever order the feed delivered changes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from gql.jobs.broker import JobBroker, JobWatch
from gql.jobs.cursor import decode_cursor, unknown_cursor
from gql.jobs.errors import ErrorCode, ExportError
from gql.jobs.models import ExportJob
from gql.jobs.repository import JobFilter, JobRepository

# Jobs read per query while catching up; a long replay takes several.
_BATCH = 200


@dataclass(frozen=True, slots=True)
class Emitted:
    job: ExportJob
    change_seq: int
    """The stream's position once this is sent: resuming from it misses nothing."""
    refresh: bool
    """The job is as sent before; its queue position or estimate moved."""
    live: bool = True
    """A change as it happened; not a state read when the stream started (the
    current one, or a replay), nor a refresh."""


async def checked_since(repo: JobRepository, user_id: str, since: int) -> int:
    """`since`, if this database has numbered that far for the user."""
    if since > await repo.last_change(user_id):
        raise unknown_cursor()
    return since


async def user_changes(
    repo: JobRepository,
    broker: JobBroker,
    user_id: str,
    job_filter: JobFilter,
    since: int | None,
) -> AsyncIterator[Emitted]:
    """The user's jobs matching `job_filter` that changed after `since`, each once in its
    latest state, then each change as it happens; with `since` None, only the latter."""
    watch = broker.watch_user(user_id, job_filter)
    try:
        if since is None:
            position = await repo.last_change(user_id)
        else:
            position = await checked_since(repo, user_id, since)
        replay = since is not None
        while True:
            if not replay:
                update = await watch.next_update()
                if update.refresh:
                    yield Emitted(update.job, position, refresh=True, live=False)
                    continue
                if update.job.change_seq <= position:
                    continue  # read and sent already, with the change that woke us before
            async for job in _changed_after(repo, watch, position):
                position = job.change_seq
                if job_filter.matches(job):
                    yield Emitted(job, position, refresh=False, live=not replay)
            replay = False
    finally:
        watch.close()


async def job_changes(
    repo: JobRepository, broker: JobBroker, user_id: str, job_id: str, since: int | None
) -> AsyncIterator[Emitted]:
    """One job: its state unless it is unchanged since `since`, then each change;
    ends after a final state (at once when the client already has it)."""
    # Watch before reading, so a change between the read and the watch is not lost.
    watch = broker.watch_job(user_id, job_id)
    try:
        if since is not None:
            await checked_since(repo, user_id, since)
        job = await repo.get_for_user(job_id, user_id)
        if job is None:
            raise ExportError.single(ErrorCode.JOB_NOT_FOUND, "No such export job.")
        watch.mark_seen(job)
        if since is None or job.change_seq > since:
            yield Emitted(job, job.change_seq, refresh=False, live=False)
        while not job.is_terminal:
            update = await watch.next_update()
            job = update.job
            refresh = update.refresh
            yield Emitted(job, job.change_seq, refresh=refresh, live=not refresh)
    finally:
        watch.close()


class JobStreams:
    """The streams subscriptions are made of; `since` is a cursor from an earlier one."""

    def __init__(self, repo: JobRepository, broker: JobBroker) -> None:
        self._repo = repo
        self._broker = broker

    def of_user(
        self, user_id: str, job_filter: JobFilter, since: str | None
    ) -> AsyncIterator[Emitted]:
        """CursorError (on first step) when `since` cannot be resumed from."""
        position = None if since is None else decode_cursor(since)
        return user_changes(self._repo, self._broker, user_id, job_filter, position)

    def of_job(self, user_id: str, job_id: str, since: str | None) -> AsyncIterator[Emitted]:
        """ExportError JOB_NOT_FOUND or CursorError (on first step) when it cannot start."""
        position = None if since is None else decode_cursor(since)
        return job_changes(self._repo, self._broker, user_id, job_id, position)


async def _changed_after(
    repo: JobRepository, watch: JobWatch, position: int
) -> AsyncIterator[ExportJob]:
    """Every job of the watch's user changed after `position`, in change order."""
    while True:
        jobs = await repo.changed_after(watch.user_id, position, limit=_BATCH)
        for job in jobs:
            position = job.change_seq
            # Its queued live copies (this state or older) are not sent again.
            watch.mark_seen(job)
            yield job
        if len(jobs) < _BATCH:
            return
