"""Output types: the export job, its Relay connection and the mutation payloads."""

from __future__ import annotations

from datetime import datetime

import strawberry

from gql.context import Info
from gql.jobs.cursor import encode_cursor
from gql.jobs.eta import Estimate, EtaBasis
from gql.jobs.models import ExportJob as Job
from gql.jobs.models import ExportKind, ExportStatus
from gql.jobs.output import ExportOutput as Output
from gql.jobs.repository import Cursor
from gql.schema import enums  # noqa: F401  (registers the domain enums with strawberry)
from gql.schema.errors import UserError


@strawberry.type(
    description=(
        "When an export should start and finish: from the run times of this service's"
        " past exports of its kind and length and, once it runs, from the rate of its own"
        " progress. The interval comes from how far past estimates were off."
    )
)
class ExportEta:
    starts_at: datetime | None = strawberry.field(
        description="While it waits: when a worker should take it; null once it runs."
    )
    completes_at: datetime
    completes_at_low: datetime = strawberry.field(description="Early end of the interval.")
    completes_at_high: datetime = strawberry.field(description="Late end of the interval.")
    basis: EtaBasis

    @classmethod
    def of(cls, estimate: Estimate) -> ExportEta:
        return cls(
            starts_at=estimate.starts_at,
            completes_at=estimate.completes_at,
            completes_at_low=estimate.completes_at_low,
            completes_at_high=estimate.completes_at_high,
            basis=estimate.basis,
        )


@strawberry.type(
    description=(
        "What a finished export produced, as its worker reported it. Exports finished"
        " before workers reported everything leave the rest null."
    )
)
class ExportOutput:
    duration_seconds: float | None
    width: int | None = strawberry.field(description="Pixels.")
    height: int | None = strawberry.field(description="Pixels.")
    frame_rate: float | None = strawberry.field(description="Frames per second.")
    size_bytes: float | None = strawberry.field(
        description="The video file's size in bytes (a Float: GraphQL's Int ends at 2 GiB)."
    )
    content_type: str | None = strawberry.field(description="The video's media type.")
    output: strawberry.Private[Output]

    @strawberry.field(
        description=(
            "A presigned, expiring URL of a JPEG frame from the export's first second, at"
            " the export's size; null when the worker wrote none."
        )
    )
    def poster_url(self, info: Info) -> str | None:
        return info.context.services.jobs.poster_url(self.output)

    @classmethod
    def of(cls, output: Output) -> ExportOutput:
        return cls(
            duration_seconds=output.duration_s,
            width=output.width,
            height=output.height,
            frame_rate=output.frame_rate,
            size_bytes=output.size_bytes,
            content_type=output.content_type,
            output=output,
        )


@strawberry.type(description="One export and its live state.")
class ExportJob:
    id: strawberry.ID
    kind: ExportKind
    status: ExportStatus
    progress: int = strawberry.field(description="0 to 100; never goes backwards.")
    message: str | None = strawberry.field(description="The worker's latest progress message.")
    error: str | None = strawberry.field(description="Why the export failed (status ERROR).")
    project_id: int | None
    game_id: int | None
    retry_of: strawberry.ID | None = strawberry.field(
        description="The failed or cancelled job this one retries."
    )
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    change_cursor: str = strawberry.field(
        description=(
            "Opaque; grows with every change. In a subscription, the stream's position"
            " once this result is received: pass it as `since` to resume after it."
        )
    )
    job: strawberry.Private[Job]

    @strawberry.field(
        description="A presigned, expiring URL of the output; set only when COMPLETE."
    )
    def download_url(self, info: Info) -> str | None:
        return info.context.services.jobs.download_url(self.job)

    @strawberry.field(description="What came out; null unless COMPLETE.")
    def output(self) -> ExportOutput | None:
        output = Output.of(self.job)
        return None if output is None else ExportOutput.of(output)

    @strawberry.field(
        description=(
            "While it waits (PENDING or QUEUED): its 1-based place among the exports"
            " waiting on the RunPod endpoint, everyone's, in submission order; null once"
            " it runs or ends."
        )
    )
    def queue_position(self, info: Info) -> int | None:
        return info.context.services.waiting.place(self.job).position

    @strawberry.field(
        description=(
            "RunPod holds more queued jobs than this service knows of (other clients"
            " share the endpoint): the position is a lower bound."
        )
    )
    def queue_position_is_lower_bound(self, info: Info) -> bool:
        return info.context.services.waiting.place(self.job).lower_bound

    @strawberry.field(
        description=(
            "When it should start and finish; null when finished, or until this service"
            " has finished enough exports of its kind to go on."
        )
    )
    def eta(self, info: Info) -> ExportEta | None:
        estimate = info.context.services.waiting.place(self.job).eta
        return None if estimate is None else ExportEta.of(estimate)

    @classmethod
    def of(cls, job: Job, *, change_seq: int | None = None) -> ExportJob:
        """`change_seq`: a stream's position, when it is not the job's own last change."""
        return cls(
            id=strawberry.ID(job.id),
            kind=job.kind,
            status=job.status,
            progress=job.progress,
            message=job.message,
            error=job.error,
            project_id=job.project_id,
            game_id=job.game_id,
            retry_of=strawberry.ID(job.retry_of) if job.retry_of else None,
            created_at=job.created_at,
            updated_at=job.updated_at,
            started_at=job.started_at,
            completed_at=job.completed_at,
            change_cursor=encode_cursor(job.change_seq if change_seq is None else change_seq),
            job=job,
        )


@strawberry.type(description="A project: a source clip and its working videos.")
class Project:
    id: int
    name: str


@strawberry.type(description="A game: one video that annotate exports cut clips from.")
class Game:
    id: int
    name: str


@strawberry.type
class ExportJobEdge:
    cursor: str
    node: ExportJob


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type(description="Export jobs, newest first (Relay cursor connection).")
class ExportJobConnection:
    edges: list[ExportJobEdge]
    page_info: PageInfo

    @classmethod
    def of(cls, jobs: list[Job], *, has_next_page: bool, after: str | None) -> ExportJobConnection:
        edges = [
            ExportJobEdge(cursor=Cursor.of(job).encode(), node=ExportJob.of(job)) for job in jobs
        ]
        return cls(
            edges=edges,
            page_info=PageInfo(
                has_next_page=has_next_page,
                has_previous_page=after is not None,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )


@strawberry.type
class StartExportPayload:
    job: ExportJob | None
    user_errors: list[UserError]


@strawberry.type
class CancelExportPayload:
    job: ExportJob | None
    user_errors: list[UserError]
