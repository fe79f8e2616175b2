"""The export-jobs domain: start, cancel, retry, read. Knows nothing of GraphQL.

Every read and write is scoped to the caller: another user's job is simply not
found, never forbidden, so its existence does not leak.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from clients.storage import ObjectStorage
from gql.assets.repository import AssetRepository, game_video_key, raw_clip_key, working_video_key
from gql.clock import utcnow
from gql.jobs.errors import ErrorCode, ExportError, FieldError
from gql.jobs.models import Change, ExportJob, ExportKind, ExportStatus
from gql.jobs.output import ExportOutput
from gql.jobs.quotas import StartQuota, refusal
from gql.jobs.repository import Cursor, JobFilter, JobRepository
from gql.jobs.requests import ExportRequest, input_seconds, validated
from gql.jobs.transitions import JobTransitions

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 100
_RECORD_ATTEMPTS = 2


class Followers(Protocol):
    """Who follows jobs on RunPod (`gql.cluster.coordinator`), as the service sees it."""

    def adopt(self, job: ExportJob) -> None:
        """Follow a job this process just recorded."""

    def poke(
        self, job: ExportJob, reported_run: str | None = None, *, changed: bool = True
    ) -> None:
        """Have the job's follower, wherever it runs, look at it now."""


@dataclass(frozen=True)
class JobPage:
    jobs: list[ExportJob]
    has_next_page: bool


def output_key(kind: ExportKind, job_id: str) -> str:
    if kind is ExportKind.FRAMING:
        return working_video_key(f"framing_{job_id}.mp4")
    return f"final_videos/{kind.value}_{job_id}.mp4"


class JobService:
    def __init__(
        self,
        *,
        repo: JobRepository,
        assets: AssetRepository,
        transitions: JobTransitions,
        followers: Followers,
        storage: ObjectStorage,
        runpod_configured: bool,
        download_url_ttl_s: int,
        quota: StartQuota,
        on_created: Callable[[ExportJob], None] | None = None,
    ) -> None:
        """`on_created` hears of each job this process records (the waiting room)."""
        self._repo = repo
        self._assets = assets
        self._transitions = transitions
        self._followers = followers
        self._storage = storage
        self._runpod_configured = runpod_configured
        self._download_url_ttl_s = download_url_ttl_s
        self._quota = quota
        self._on_created = on_created

    async def start(self, user_id: str, request: ExportRequest) -> ExportJob:
        """Record the job and hand it to its follower; RunPod is never awaited here."""
        request = validated(request)
        if not self._runpod_configured:
            raise ExportError.single(
                ErrorCode.RUNPOD_NOT_CONFIGURED,
                "No RunPod endpoint is configured (set RUNPOD_ENDPOINT_URL).",
            )
        if request.idempotency_key is not None:
            existing = await self._repo.get_by_idempotency_key(user_id, request.idempotency_key)
            if existing is not None:
                return _same_request(existing, request)
        input_key = await self._input_key(user_id, request)
        return await self._create(user_id, request, input_key, retry_of=None)

    async def retry(self, user_id: str, job_id: str) -> ExportJob:
        """A new job with the same input as a failed or cancelled one."""
        job = await self._owned(user_id, job_id)
        if job.status not in (ExportStatus.ERROR, ExportStatus.CANCELLED):
            raise ExportError.single(
                ErrorCode.NOT_RETRYABLE,
                f"Only failed or cancelled exports can be retried; this one is {job.status.name}.",
                ("id",),
            )
        request = ExportRequest(
            kind=job.kind,
            project_id=job.project_id,
            game_id=job.game_id,
            params=job.params,
            idempotency_key=None,
        )
        return await self._create(user_id, request, job.input_key, retry_of=job.id)

    async def cancel(self, user_id: str, job_id: str) -> ExportJob:
        """Cancelled at once here; the job's follower makes sure RunPod stops it too."""
        job = await self._owned(user_id, job_id)
        if job.is_terminal:
            raise ExportError.single(
                ErrorCode.NOT_CANCELLABLE,
                f"The export has already finished ({job.status.name}).",
                ("id",),
            )
        job = await self._transitions.apply(
            job,
            Change(status=ExportStatus.CANCELLED, message="Cancelled"),
            cancel_pending=job.runpod_id is not None,
        )
        if job.status is not ExportStatus.CANCELLED:
            raise ExportError.single(
                ErrorCode.NOT_CANCELLABLE,
                f"The export has already finished ({job.status.name}).",
                ("id",),
            )
        self._followers.poke(job)
        return job

    async def get(self, user_id: str, job_id: str) -> ExportJob | None:
        return await self._repo.get_for_user(job_id, user_id)

    async def list(
        self, user_id: str, job_filter: JobFilter, *, first: int, after: str | None
    ) -> JobPage:
        if not 0 <= first <= MAX_PAGE_SIZE:
            raise ExportError.single(
                ErrorCode.OUT_OF_RANGE, f"first must be between 0 and {MAX_PAGE_SIZE}.", ("first",)
            )
        try:
            cursor = Cursor.decode(after) if after else None
        except ValueError:
            raise ExportError.single(
                ErrorCode.INVALID, "This cursor was not issued by this API.", ("after",)
            ) from None
        jobs = await self._repo.list_for_user(user_id, job_filter, limit=first + 1, after=cursor)
        return JobPage(jobs=jobs[:first], has_next_page=len(jobs) > first)

    def download_url(self, job: ExportJob) -> str | None:
        # Synchronous: signing is local, and a field with no awaitable lets
        # GraphQL execute a whole result without scheduling anything.
        if job.status is not ExportStatus.COMPLETE:
            return None
        return self._storage.presigned_url(job.output_key, self._download_url_ttl_s)

    def poster_url(self, output: ExportOutput) -> str | None:
        """A presigned URL of the output's poster frame, like the download URL."""
        if output.poster_key is None:
            return None
        return self._storage.presigned_url(output.poster_key, self._download_url_ttl_s)

    async def _owned(self, user_id: str, job_id: str) -> ExportJob:
        job = await self._repo.get_for_user(job_id, user_id)
        if job is None:
            raise ExportError.single(ErrorCode.JOB_NOT_FOUND, "No such export job.", ("id",))
        return job

    async def _create(
        self, user_id: str, request: ExportRequest, input_key: str, *, retry_of: str | None
    ) -> ExportJob:
        now = utcnow()
        job_id = str(uuid.uuid4())
        # Annotate exports process their clips, whatever the game video's length.
        length = (
            None
            if request.kind is ExportKind.ANNOTATE
            else await self._assets.duration_of(input_key)
        )
        seconds = input_seconds(request, length)
        job = ExportJob(
            id=job_id,
            user_id=user_id,
            kind=request.kind,
            status=ExportStatus.PENDING,
            progress=0,
            message="Waiting to be submitted",
            error=None,
            project_id=request.project_id,
            game_id=request.game_id,
            params=request.params,
            input_key=input_key,
            output_key=output_key(request.kind, job_id),
            runpod_id=None,
            webhook_token=secrets.token_urlsafe(24),
            idempotency_key=request.idempotency_key,
            attempts=0,
            next_attempt_at=None,
            cancel_pending=False,
            retry_of=retry_of,
            result=None,
            version=1,
            created_at=now,
            updated_at=now,
            started_at=None,
            completed_at=None,
            input_seconds=seconds,
        )
        stored = await self._record(job, request)
        if stored.id != job.id:
            return stored  # an idempotent replay
        logger.info(
            "job created",
            extra={
                "action": "create",
                "job": stored.id,
                "kind": stored.kind.value,
                "user": user_id,
            },
        )
        if self._on_created is not None:
            self._on_created(stored)
        self._transitions.announce(stored)
        self._followers.adopt(stored)
        return stored

    async def _record(self, job: ExportJob, request: ExportRequest) -> ExportJob:
        """Store the job within its user's quota, or return the job its idempotency
        key already names; raises the quota's refusal."""
        for _ in range(_RECORD_ATTEMPTS):
            stored = await self._repo.insert(job, self._quota)
            if stored is not None:
                return stored
            if request.idempotency_key is not None:
                # A concurrent request with the same key may have won.
                existing = await self._repo.get_by_idempotency_key(
                    job.user_id, request.idempotency_key
                )
                if existing is not None:
                    return _same_request(existing, request)
            now = utcnow()
            error = refusal(self._quota, await self._repo.quota_usage(job.user_id, now), now)
            if error is not None:
                raise error
            # Room was made between the two reads (an export ended): try again.
        raise ExportError(
            FieldError(ErrorCode.RATE_LIMITED, "Too many starts at once; try again.", None, 1)
        )

    async def _input_key(self, user_id: str, request: ExportRequest) -> str:
        if request.kind is ExportKind.ANNOTATE:
            assert request.game_id is not None
            game = await self._assets.game_for_user(request.game_id, user_id)
            if game is None:
                raise ExportError.single(
                    ErrorCode.GAME_NOT_FOUND, "No such game.", ("input", "gameId")
                )
            if not game.video_filename:
                raise ExportError.single(
                    ErrorCode.NO_GAME_VIDEO, "The game has no video yet.", ("input", "gameId")
                )
            return game_video_key(game.video_filename)
        assert request.project_id is not None
        project = await self._assets.project_for_user(request.project_id, user_id)
        if project is None:
            raise ExportError.single(
                ErrorCode.PROJECT_NOT_FOUND, "No such project.", ("input", "projectId")
            )
        if request.kind is ExportKind.FRAMING:
            if not project.source_filename:
                raise ExportError.single(
                    ErrorCode.NO_SOURCE_CLIP,
                    "The project has no source clip.",
                    ("input", "projectId"),
                )
            return raw_clip_key(project.source_filename)
        working = project.working_filename
        if working is None:
            raise ExportError.single(
                ErrorCode.NO_WORKING_VIDEO,
                "The project has no working video yet; run a framing export first.",
                ("input", "projectId"),
            )
        return working_video_key(working)


def _same_request(existing: ExportJob, request: ExportRequest) -> ExportJob:
    """An idempotency key replays its job, but only for the same request."""
    if (
        existing.kind is request.kind
        and existing.project_id == request.project_id
        and existing.game_id == request.game_id
        and existing.params == request.params
    ):
        return existing
    raise ExportError.single(
        ErrorCode.IDEMPOTENCY_KEY_REUSED,
        "This idempotency key was used for a different export.",
        ("input", "idempotencyKey"),
    )
