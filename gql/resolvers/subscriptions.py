"""The root `Subscription` type and its resolvers."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Annotated

import strawberry

from gql.context import Info, current_user
from gql.jobs.cursor import CursorError, encode_cursor
from gql.jobs.errors import ExportError
from gql.jobs.resume import Emitted
from gql.schema.errors import PublicError
from gql.schema.inputs import ExportJobFilter, job_filter
from gql.schema.permissions import AUTHENTICATED
from gql.schema.types import ExportJob

SINCE = (
    "A `changeCursor` from an earlier stream: first every change after it that this"
    " stream would have sent (each job once, in its latest state, in change order),"
    " then live changes. An unusable cursor is the error BAD_CURSOR or UNKNOWN_CURSOR:"
    " re-read the list and subscribe without it."
)


async def export_job(
    info: Info, id: strawberry.ID, since: str | None = None
) -> AsyncGenerator[ExportJob, None]:
    """The job's current state at once, then each change; ends after a final state."""
    streams = info.context.services.streams
    user_id = current_user(info)
    async for emitted in _public(lambda: streams.of_job(user_id, str(id), _since(info, since))):
        _tell_hub(info, emitted)
        yield ExportJob.of(emitted.job, change_seq=emitted.change_seq)


async def export_jobs(
    info: Info, filter: ExportJobFilter | None = None, since: str | None = None
) -> AsyncGenerator[ExportJob, None]:
    """Every change to any of the caller's jobs that matches the filter."""
    streams = info.context.services.streams
    user_id = current_user(info)
    chosen = job_filter(filter)
    async for emitted in _public(lambda: streams.of_user(user_id, chosen, _since(info, since))):
        _tell_hub(info, emitted)
        yield ExportJob.of(emitted.job, change_seq=emitted.change_seq)


def _since(info: Info, since: str | None) -> str | None:
    # An SSE reconnection's Last-Event-ID is newer than the `since` it first sent.
    return info.context.resume_from or since


async def _public(open_stream: Callable[[], AsyncIterator[Emitted]]) -> AsyncIterator[Emitted]:
    """The stream, its refusals (a bad cursor, a job not found) as public errors."""
    try:
        async for emitted in open_stream():
            yield emitted
    except CursorError as error:
        raise PublicError(error.message, error.code) from None
    except ExportError as error:
        raise PublicError(str(error), error.errors[0].code.value) from None


def _tell_hub(info: Info, emitted: Emitted) -> None:
    """What the shared execution needs to know of the result about to be yielded:
    when its change was written (push latency), or that it only refreshes a job
    already sent (its position or estimate moved; equal results are not resent),
    and the stream's cursor once it is sent."""
    info.context.result_job_id = emitted.job.id
    info.context.result_final = emitted.job.is_terminal
    info.context.refresh = emitted.refresh
    info.context.result_cursor = encode_cursor(emitted.change_seq)
    if emitted.live:
        info.context.change_written_at = emitted.job.updated_at


@strawberry.type
class Subscription:
    @strawberry.subscription(
        permission_classes=AUTHENTICATED,
        description=(
            "The current state at once, then each change to the selected fields;"
            " completes after a final state. With `since`, the current state only if"
            " it changed after that cursor."
        ),
    )
    async def export_job(
        self,
        info: Info,
        id: strawberry.ID,
        since: Annotated[str | None, strawberry.argument(description=SINCE)] = None,
    ) -> AsyncGenerator[ExportJob, None]:
        async for job in export_job(info, id, since):
            yield job

    @strawberry.subscription(
        permission_classes=AUTHENTICATED,
        description="Every change to any of the caller's jobs, in change order.",
    )
    async def export_jobs(
        self,
        info: Info,
        filter: ExportJobFilter | None = None,
        since: Annotated[str | None, strawberry.argument(description=SINCE)] = None,
    ) -> AsyncGenerator[ExportJob, None]:
        async for job in export_jobs(info, filter, since):
            yield job
