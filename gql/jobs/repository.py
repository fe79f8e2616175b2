"""The only place that reads and writes `export_jobs`; it speaks in `ExportJob`s, never rows.

Besides the jobs themselves it keeps their leases: which API process follows
each job that needs following. A lease lasts while its owner is registered
(`gql.cluster.registry`).
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from gql.clock import format_time, parse_time
from gql.db.database import Database, Statement
from gql.jobs.errors import JobConflict
from gql.jobs.eta import FinishedRun
from gql.jobs.models import ExportJob, ExportKind, ExportStatus, params_json
from gql.jobs.quotas import RATE_WINDOW, QuotaUsage, StartQuota


@dataclass(frozen=True, kw_only=True)
class JobFilter:
    statuses: frozenset[ExportStatus] | None = None
    kinds: frozenset[ExportKind] | None = None
    project_id: int | None = None
    game_id: int | None = None

    def matches(self, job: ExportJob) -> bool:
        return (
            (self.statuses is None or job.status in self.statuses)
            and (self.kinds is None or job.kind in self.kinds)
            and (self.project_id is None or job.project_id == self.project_id)
            and (self.game_id is None or job.game_id == self.game_id)
        )


@dataclass(frozen=True)
class Cursor:
    """A position in the newest-first listing: (created_at, id) of the last job seen."""

    created_at: datetime
    job_id: str

    def encode(self) -> str:
        raw = f"{format_time(self.created_at)}|{self.job_id}".encode()
        return base64.urlsafe_b64encode(raw).decode()

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Raises ValueError for anything we did not hand out."""
        try:
            created, job_id = base64.urlsafe_b64decode(text.encode()).decode().split("|", 1)
            created_at = parse_time(created)
        except (ValueError, UnicodeDecodeError) as error:
            raise ValueError("malformed cursor") from error
        if created_at is None or not job_id:
            raise ValueError("malformed cursor")
        return cls(created_at, job_id)

    @classmethod
    def of(cls, job: ExportJob) -> Cursor:
        return cls(job.created_at, job.id)


@dataclass(frozen=True, kw_only=True)
class LineEntry:
    """An unfinished job as the queue's view of it needs it."""

    id: str
    user_id: str
    kind: ExportKind
    status: ExportStatus
    progress: int
    input_seconds: float | None
    created_at: datetime
    started_at: datetime | None
    updated_at: datetime


class JobEvents(Protocol):
    """What a job change owes beyond its row (the webhook outbox, `gql.webhooks`):
    statements written in the same transaction as the change."""

    def statements(self, before: ExportJob | None, after: ExportJob) -> list[Statement]:
        """What moving `before` (None: a new job) to `after` writes besides the job."""

    def written(self) -> None:
        """Statements were committed with a change."""


def row_values(job: ExportJob) -> dict[str, Any]:
    """The job as the column values of its row (`ExportJob.from_row` reads them back)."""
    return {
        **_changeable_values(job, job.version),
        "user_id": job.user_id,
        "type": job.kind.value,
        "project_id": job.project_id,
        "game_id": job.game_id,
        "params": params_json(job.params),
        "input_key": job.input_key,
        "output_key": job.output_key,
        "webhook_token": job.webhook_token,
        "idempotency_key": job.idempotency_key,
        "retry_of": job.retry_of,
        "created_at": format_time(job.created_at),
        "input_seconds": job.input_seconds,
        "change_seq": job.change_seq,
    }


def _changeable_values(job: ExportJob, version: int) -> dict[str, Any]:
    """The columns a state change may write (see `save_job`), and the version it expects."""
    return {
        "id": job.id,
        "status": job.status.value,
        "progress": job.progress,
        "message": job.message,
        "error": job.error,
        "runpod_job_id": job.runpod_id,
        "attempts": job.attempts,
        "next_attempt_at": format_time(job.next_attempt_at),
        "cancel_pending": int(job.cancel_pending),
        "result": json.dumps(job.result) if job.result is not None else None,
        "updated_at": format_time(job.updated_at),
        "started_at": format_time(job.started_at),
        "completed_at": format_time(job.completed_at),
        "execution_timeout_s": job.execution_timeout_s,
        "queue_ms": job.queue_ms,
        "run_ms": job.run_ms,
        "version": version,
    }


# Held while a change number is taken and committed. On PostgreSQL a sequence's
# numbers commit in any order: a reader could see 8 before 7 commits, hand a
# client the cursor 8, and 7 would never reach it. Under this lock, taken with
# the number and released at commit, a number is visible only once every smaller
# one is, so "everything after my cursor" never skips. It serialises the commits
# of job changes (one short UPDATE each), not the work around them. SQLite
# writes one statement at a time and needs no lock.
CHANGE_SEQ_LOCK = "export-gql:change-seq"

# Resync reads name their jobs and users in `IN` lists of at most this many.
_IN_CHUNK = 500


class JobRepository:
    def __init__(
        self, database: Database, *, lease_owner: str, events: JobEvents | None = None
    ) -> None:
        self._db = database
        self._owner = lease_owner
        self._events = events

    async def insert(self, job: ExportJob, quota: StartQuota) -> ExportJob | None:
        """Store a new job, leased to this process, within its user's quota; None
        when the quota is used up or the user's idempotency key is taken."""
        values = {
            **row_values(job),
            "lease_owner": self._owner,
            "max_active": quota.max_active,
            "max_starts": quota.max_per_minute,
            "window_start": format_time(job.created_at - RATE_WINDOW),
        }
        events = self._events_of(None, job)
        async with self._db.serialized(f"export-gql:starts:{job.user_id}", CHANGE_SEQ_LOCK):
            row = await self._db.fetch_one_then("insert_job", values, events)
        if row is None:
            return None
        self._written(events)
        return ExportJob.from_row(row)

    async def quota_usage(self, user_id: str, now: datetime) -> QuotaUsage:
        row = await self._db.fetch_one(
            "user_quota_usage", user_id=user_id, window_start=format_time(now - RATE_WINDOW)
        )
        assert row is not None
        return QuotaUsage(
            active=int(row["active"]),
            recent=int(row["recent"]),
            oldest_recent=parse_time(row["oldest_recent"]),
        )

    async def get(self, job_id: str) -> ExportJob | None:
        row = await self._db.fetch_one("get_job", id=job_id)
        return ExportJob.from_row(row) if row else None

    async def get_for_user(self, job_id: str, user_id: str) -> ExportJob | None:
        row = await self._db.fetch_one("get_user_job", id=job_id, user_id=user_id)
        return ExportJob.from_row(row) if row else None

    async def get_by_idempotency_key(self, user_id: str, key: str) -> ExportJob | None:
        row = await self._db.fetch_one(
            "get_job_by_idempotency_key", user_id=user_id, idempotency_key=key
        )
        return ExportJob.from_row(row) if row else None

    async def get_many(self, job_ids: Sequence[str]) -> list[ExportJob]:
        jobs: list[ExportJob] = []
        for chunk in _chunks(job_ids):
            values: dict[str, Any] = {}
            sql = f"SELECT * FROM export_jobs WHERE {_in_clause('id', chunk, values)}"
            jobs += await self._select(sql, values)
        return jobs

    async def changed_since(self, user_ids: Sequence[str], since: datetime) -> list[ExportJob]:
        """The users' jobs written at or after `since`."""
        jobs: list[ExportJob] = []
        for chunk in _chunks(user_ids):
            values: dict[str, Any] = {"since": format_time(since)}
            sql = (
                f"SELECT * FROM export_jobs WHERE {_in_clause('user_id', chunk, values)} "
                "AND updated_at >= :since"
            )
            jobs += await self._select(sql, values)
        return jobs

    async def unfinished_line(self) -> list[LineEntry]:
        """Every unfinished job, oldest first (the order RunPod queues them in)."""
        return [
            LineEntry(
                id=row["id"],
                user_id=row["user_id"],
                kind=ExportKind(row["type"]),
                status=ExportStatus(row["status"]),
                progress=row["progress"],
                input_seconds=row["input_seconds"],
                created_at=_required(parse_time(row["created_at"])),
                started_at=parse_time(row["started_at"]),
                updated_at=_required(parse_time(row["updated_at"])),
            )
            for row in await self._db.fetch_all("unfinished_jobs")
        ]

    async def finished_runs(self, limit: int) -> list[FinishedRun]:
        """The newest completed exports' run times (RunPod's executionTime)."""
        return [
            FinishedRun(
                kind=ExportKind(row["type"]),
                input_seconds=row["input_seconds"],
                run_s=row["run_ms"] / 1000,
            )
            for row in await self._db.fetch_all("finished_runs", limit=limit)
        ]

    # --- leases: jobs that need a follower are unfinished or owe RunPod a cancel ---

    async def claim(self, limit: int) -> list[ExportJob]:
        """Lease up to `limit` jobs that need a follower and have none, oldest first."""
        rows = await self._db.fetch_all("claim_jobs", owner=self._owner, limit=limit)
        return [ExportJob.from_row(row) for row in rows]

    async def claim_one(self, job_id: str) -> ExportJob | None:
        """Lease this job if it needs a follower and has none (or already is ours)."""
        row = await self._db.fetch_one("claim_job", id=job_id, owner=self._owner)
        return ExportJob.from_row(row) if row else None

    async def leased(self) -> set[str]:
        """The jobs that need a follower and are leased to this process."""
        return {row["id"] for row in await self._db.fetch_all("leased_jobs", owner=self._owner)}

    async def release(self, job_id: str) -> None:
        await self._db.execute("release_lease", id=job_id, owner=self._owner)

    async def release_all(self) -> None:
        await self._db.execute("release_leases", owner=self._owner)

    async def save(
        self,
        job: ExportJob,
        *,
        expected_version: int,
        previous: ExportJob | None = None,
        announce: bool = True,
    ) -> ExportJob:
        """Write `job` over the row at `expected_version`; JobConflict if it moved.
        A change subscribers will hear of (`announce`) takes the next change number.
        With `previous` (the job as it was), the events the change owes are written
        in the same transaction.

        The stored job is `job` at the next version: what was written is known,
        so nothing is read back."""
        events = (
            []
            if previous is None or self._events is None
            else self._events.statements(previous, job.evolve(version=expected_version + 1))
        )
        values = {**_changeable_values(job, expected_version), "announce": int(announce)}
        # Only a change that takes a number waits for the others that do.
        numbered = self._db.serialized(CHANGE_SEQ_LOCK) if announce else contextlib.nullcontext()
        async with numbered:
            row = await self._db.fetch_one_then("save_job", values, events)
        if row is None:
            raise JobConflict(job.id)
        self._written(events)
        return job.evolve(version=row["version"], change_seq=row["change_seq"] or 0)

    async def changed_after(self, user_id: str, change_seq: int, *, limit: int) -> list[ExportJob]:
        """The user's jobs whose last change is numbered after `change_seq`, in change order."""
        rows = await self._db.fetch_all(
            "user_jobs_changed_after", user_id=user_id, after=change_seq, limit=limit
        )
        return [ExportJob.from_row(row) for row in rows]

    async def last_change(self, user_id: str) -> int:
        """The number of the user's newest job change (0 before any)."""
        row = await self._db.fetch_one("user_last_change", user_id=user_id)
        assert row is not None
        return int(row["change_seq"])

    def _events_of(self, before: ExportJob | None, after: ExportJob) -> list[Statement]:
        return [] if self._events is None else self._events.statements(before, after)

    def _written(self, events: list[Statement]) -> None:
        if events and self._events is not None:
            self._events.written()

    async def list_for_user(
        self, user_id: str, job_filter: JobFilter, *, limit: int, after: Cursor | None
    ) -> list[ExportJob]:
        """Newest first, `limit` jobs after the cursor."""
        clauses = ["user_id = :user_id"]
        values: dict[str, Any] = {"user_id": user_id, "limit": limit}
        if job_filter.statuses is not None:
            clauses.append(_in_clause("status", [s.value for s in job_filter.statuses], values))
        if job_filter.kinds is not None:
            clauses.append(_in_clause("type", [k.value for k in job_filter.kinds], values))
        if job_filter.project_id is not None:
            clauses.append("project_id = :project_id")
            values["project_id"] = job_filter.project_id
        if job_filter.game_id is not None:
            clauses.append("game_id = :game_id")
            values["game_id"] = job_filter.game_id
        if after is not None:
            clauses.append(
                "(created_at < :after_created OR (created_at = :after_created AND id < :after_id))"
            )
            values["after_created"] = format_time(after.created_at)
            values["after_id"] = after.job_id
        sql = (
            f"SELECT * FROM export_jobs WHERE {' AND '.join(clauses)} "
            "ORDER BY created_at DESC, id DESC LIMIT :limit"
        )
        return await self._select(sql, values)

    async def _select(self, sql: str, values: dict[str, Any]) -> list[ExportJob]:
        return [ExportJob.from_row(row) for row in await self._db.fetch_all_sql(sql, values)]


def _required(value: datetime | None) -> datetime:
    assert value is not None
    return value


def _chunks(items: Sequence[str]) -> list[Sequence[str]]:
    return [items[start : start + _IN_CHUNK] for start in range(0, len(items), _IN_CHUNK)]


def _in_clause(column: str, items: Sequence[str], values: dict[str, Any]) -> str:
    """`column IN (:column_0, ...)` with bound parameters; an empty list matches nothing."""
    if not items:
        return "1 = 0"
    names = [f"{column}_{index}" for index in range(len(items))]
    values.update(zip(names, items, strict=True))
    return f"{column} IN ({', '.join(':' + name for name in names)})"
