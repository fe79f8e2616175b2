"""The root `Subscription` type and its resolvers."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from gql.context import Info, current_user
from gql.jobs.broker import Update
from gql.schema.errors import PublicError
from gql.schema.inputs import ExportJobFilter, job_filter
from gql.schema.permissions import AUTHENTICATED
from gql.schema.types import ExportJob


async def export_job(info: Info, id: strawberry.ID) -> AsyncGenerator[ExportJob, None]:
    """The job's current state at once, then each change; ends after a final state."""
    user_id = current_user(info)
    services = info.context.services
    # Watch before reading, so a change between the read and the watch is not lost.
    watch = services.broker.watch_job(user_id, str(id))
    try:
        job = await services.jobs.get(user_id, str(id))
        if job is None:
            raise PublicError("No such export job.", "JOB_NOT_FOUND")
        watch.mark_seen(job)
        yield ExportJob.of(job)
        while not job.is_terminal:
            update = await watch.next_update()
            job = update.job
            _tell_hub(info, update)
            yield ExportJob.of(job)
    finally:
        watch.close()


async def export_jobs(
    info: Info, filter: ExportJobFilter | None = None
) -> AsyncGenerator[ExportJob, None]:
    """Every change to any of the caller's jobs that matches the filter."""
    watch = info.context.services.broker.watch_user(current_user(info), job_filter(filter))
    try:
        async for update in watch:
            _tell_hub(info, update)
            yield ExportJob.of(update.job)
    finally:
        watch.close()


def _tell_hub(info: Info, update: Update) -> None:
    """What the shared execution needs to know of the result about to be yielded:
    when its change was written (push latency), or that it only refreshes a job
    already sent (its position or estimate moved; equal results are not resent)."""
    info.context.result_job_id = update.job.id
    info.context.result_final = update.job.is_terminal
    info.context.refresh = update.refresh
    if not update.refresh:
        info.context.change_written_at = update.job.updated_at


@strawberry.type
class Subscription:
    @strawberry.subscription(
        permission_classes=AUTHENTICATED,
        description=(
            "The current state at once, then each change to the selected fields;"
            " completes after a final state."
        ),
    )
    async def export_job(self, info: Info, id: strawberry.ID) -> AsyncGenerator[ExportJob, None]:
        async for job in export_job(info, id):
            yield job

    @strawberry.subscription(
        permission_classes=AUTHENTICATED,
        description="Every change to any of the caller's jobs.",
    )
    async def export_jobs(
        self, info: Info, filter: ExportJobFilter | None = None
    ) -> AsyncGenerator[ExportJob, None]:
        async for job in export_jobs(info, filter):
            yield job
