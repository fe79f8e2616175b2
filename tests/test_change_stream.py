"""Resumable job streams against the real database (SQLite and PostgreSQL): a change
that races the replay reaches the stream exactly once, in change order.

The race is placed, not hoped for: the stream's repository writes the racing
change at a chosen point of the replay's read (before it, so the change is both
in the database and in the live mailbox; or after it, so only live delivery can
bring it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Literal

import pytest

from gql.assets.repository import AssetRepository
from gql.cluster.feed import LocalFeed
from gql.db.database import Database
from gql.jobs.broker import JobBroker
from gql.jobs.cursor import encode_cursor
from gql.jobs.models import Change, ExportJob, ExportStatus
from gql.jobs.quotas import StartQuota
from gql.jobs.repository import CHANGE_SEQ_LOCK, JobFilter, JobRepository
from gql.jobs.resume import Emitted, JobStreams
from gql.jobs.transitions import JobTransitions
from tests.support.job_models import job as job_model

USER = "user-1"
QUOTA = StartQuota(max_active=100, max_per_minute=100)
Moment = Literal["before_read", "after_read"]


class RacingRepository(JobRepository):
    """Runs `race` once, just before or just after the stream's first replay read."""

    def __init__(self, database: Database, moment: Moment) -> None:
        super().__init__(database, lease_owner="test")
        self.moment = moment
        self.race: asyncio.Future[None] | None = None
        self._write: object = None

    async def changed_after(self, user_id: str, change_seq: int, *, limit: int) -> list[ExportJob]:
        write, self._write = self._write, None
        if write is not None and self.moment == "before_read":
            await write()  # type: ignore[operator]
        jobs = await super().changed_after(user_id, change_seq, limit=limit)
        if write is not None and self.moment == "after_read":
            await write()  # type: ignore[operator]
        return jobs

    def race_next_read(self, write: object) -> None:
        self._write = write


async def take(stream: AsyncIterator[Emitted], count: int) -> list[tuple[str, int, int]]:
    """The next `count` results as (job id, progress, change number)."""
    taken = []
    for _ in range(count):
        emitted = await asyncio.wait_for(anext(stream), 10)
        taken.append((emitted.job.id, emitted.job.progress, emitted.change_seq))
    return taken


@pytest.mark.parametrize("moment", ["before_read", "after_read"])
async def test_a_change_racing_the_replay_is_sent_once_in_change_order(
    database: Database, moment: Moment
) -> None:
    repo = RacingRepository(database, moment)
    broker = JobBroker()
    transitions = JobTransitions(repo, AssetRepository(database), LocalFeed(broker))
    jobs: dict[str, ExportJob] = {}
    for name in ("a", "b", "c"):
        stored = await repo.insert(
            job_model(id=name, user_id=USER, status=ExportStatus.QUEUED, version=1), QUOTA
        )
        assert stored is not None
        jobs[name] = stored

    async def move(name: str, progress: int) -> None:
        change = Change(status=ExportStatus.PROCESSING, progress=progress)
        jobs[name] = await transitions.apply(jobs[name], change)

    await move("a", 10)
    cursor = jobs["a"].change_seq
    await move("b", 20)
    await move("a", 30)

    async def racing_change() -> None:
        await move("c", 40)

    repo.race_next_read(racing_change)
    streams = JobStreams(repo, broker)
    stream = streams.of_user(USER, JobFilter(), encode_cursor(cursor))

    replayed = await take(stream, 3)
    assert [(job, progress) for job, progress, _ in replayed] == [
        ("b", 20),
        ("a", 30),
        ("c", 40),
    ]
    assert [seq for _, _, seq in replayed] == sorted({seq for _, _, seq in replayed})

    # The next result is the next change: the racing one was not sent again.
    await move("b", 50)
    (live,) = await take(stream, 1)
    assert live[:2] == ("b", 50) and live[2] > replayed[-1][2]
    await stream.aclose()  # type: ignore[attr-defined]


async def test_on_postgresql_a_change_number_is_taken_only_after_smaller_ones_commit(
    postgres_url: str,
) -> None:
    """A writer holding number N uncommitted makes the next writer wait, so no reader
    can see N + 1 before N: a cursor past N + 1 never skips N."""
    import asyncpg

    from tests.support.waiting import eventually

    database = Database(postgres_url)
    await database.connect()
    repo = JobRepository(database, lease_owner="test")
    for name in ("a", "b"):
        await repo.insert(job_model(id=name, user_id=USER, version=1), QUOTA)
    b = await repo.get("b")
    assert b is not None
    slow = await asyncpg.connect(postgres_url)
    try:
        transaction = slow.transaction()
        await transaction.start()
        await slow.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", CHANGE_SEQ_LOCK)
        taken = await slow.fetchval(
            "UPDATE export_jobs SET change_seq = (SELECT MAX(change_seq) + 1 FROM export_jobs) "
            "WHERE id = 'a' RETURNING change_seq"
        )
        saving = asyncio.ensure_future(repo.save(b.evolve(progress=5), expected_version=1))

        async def waiting_or_done() -> bool:
            waiting = await slow.fetchval("SELECT COUNT(*) FROM pg_locks WHERE NOT granted")
            return bool(waiting) or saving.done()

        await eventually(waiting_or_done)
        assert not saving.done(), "the second writer took a number while N was uncommitted"
        await transaction.commit()
        saved = await asyncio.wait_for(saving, 10)
        assert saved.change_seq == taken + 1
    finally:
        await slow.close()
        await database.disconnect()
