"""The one function through which every job change is written and announced.

A change is announced only once its row is written, through the change feed,
which hands it to this process's subscribers and the other processes'.
"""

from __future__ import annotations

import logging
from pathlib import PurePosixPath
from typing import Any, Protocol

from gql.assets.repository import AssetRepository
from gql.clock import utcnow
from gql.jobs.errors import JobConflict
from gql.jobs.models import Change, ExportJob, ExportKind, ExportStatus
from gql.jobs.repository import JobRepository
from gql.observability import metrics

logger = logging.getLogger(__name__)

_CONFLICT_RETRIES = 5


class ChangePublisher(Protocol):
    """The change feed (`gql.cluster.feed`), as far as writers are concerned."""

    def publish(self, job: ExportJob) -> None: ...


class JobTransitions:
    def __init__(self, repo: JobRepository, assets: AssetRepository, feed: ChangePublisher) -> None:
        self._repo = repo
        self._assets = assets
        self._feed = feed

    async def apply(
        self, job: ExportJob, change: Change | None = None, **bookkeeping: Any
    ) -> ExportJob:
        """Move `job` by `change` (and set bookkeeping fields such as `runpod_id`).

        The write is a compare-and-set on the job's version; when another writer
        got there first, the change is re-applied to the fresh row, so a stale
        observation can never move a job backwards. Returns the stored job.
        """
        for _ in range(_CONFLICT_RETRIES):
            now = utcnow()
            moved = job.apply(change, now=now) if change is not None else None
            updated = moved
            if bookkeeping:
                updated = (moved or job).evolve(updated_at=now, **bookkeeping)
            if updated is None:
                return job
            if updated.status is not job.status and updated.status is ExportStatus.COMPLETE:
                await self._on_complete(updated)
            try:
                saved = await self._repo.save(
                    updated,
                    expected_version=job.version,
                    previous=job,
                    announce=moved is not None,
                )
            except JobConflict:
                fresh = await self._repo.get(job.id)
                assert fresh is not None, "jobs are never deleted"
                job = fresh
                continue
            if saved.status is not job.status:
                metrics.JOB_TRANSITIONS.labels(saved.kind.value, saved.status.value).inc()
                logger.info(
                    "job status changed",
                    extra={
                        "action": "transition",
                        "job": saved.id,
                        "from": job.status.value,
                        "to": saved.status.value,
                    },
                )
            if moved is not None:
                self._feed.publish(saved)
            return saved
        raise JobConflict(job.id)

    def announce(self, job: ExportJob) -> None:
        """Tell subscribers about a job that was just created."""
        metrics.JOB_TRANSITIONS.labels(job.kind.value, job.status.value).inc()
        self._feed.publish(job)

    async def _on_complete(self, job: ExportJob) -> None:
        # Written before the status, so a crash in between repeats it harmlessly.
        if job.kind is ExportKind.FRAMING and job.project_id is not None:
            filename = PurePosixPath(job.output_key).name
            await self._assets.add_working_video(job.project_id, filename)
        # The lengths the worker measured: the next export of either video knows it.
        for key, field in ((job.input_key, "input_duration_s"), (job.output_key, "duration_s")):
            seconds = (job.result or {}).get(field)
            if isinstance(seconds, int | float) and seconds > 0:
                await self._assets.record_duration(key, float(seconds))
