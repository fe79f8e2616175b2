"""The events a job change causes, and their bodies: the job as the API shows it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from gql.config.webhook_values import EventType
from gql.jobs.models import ExportJob, ExportStatus
from gql.jobs.output import ExportOutput

# Where a stored completed body keeps its poster's key until it is sent, signed.
POSTER_KEY = "posterKey"
TEST_EVENT = "webhook.test"
"""What `export-gql doctor` sends; never stored."""

_ON_STATUS = {
    ExportStatus.QUEUED: EventType.QUEUED,
    ExportStatus.PROCESSING: EventType.STARTED,
    ExportStatus.COMPLETE: EventType.COMPLETED,
    ExportStatus.ERROR: EventType.FAILED,
    ExportStatus.CANCELLED: EventType.CANCELLED,
}


def event_for(before: ExportJob | None, after: ExportJob) -> EventType | None:
    """The event moving `before` (None: nothing, a new job) to `after` causes, if any."""
    if before is None:
        return EventType.CREATED
    if after.status is not before.status:
        return _ON_STATUS.get(after.status)
    if after.status is ExportStatus.PROCESSING and (after.progress, after.message) != (
        before.progress,
        before.message,
    ):
        return EventType.PROGRESS
    return None


def new_webhook_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def job_data(job: ExportJob, *, download_url: str | None = None) -> dict[str, Any]:
    """The job's fields as the GraphQL `ExportJob` shows them, with its user and version;
    a completed job adds its `output` as the API shows it."""
    data: dict[str, Any] = {
        "id": job.id,
        "userId": job.user_id,
        "version": job.version,
        "kind": job.kind.name,
        "status": job.status.name,
        "progress": job.progress,
        "message": job.message,
        "error": job.error,
        "projectId": job.project_id,
        "gameId": job.game_id,
        "retryOf": job.retry_of,
        "createdAt": _iso(job.created_at),
        "updatedAt": _iso(job.updated_at),
        "startedAt": _iso(job.started_at),
        "completedAt": _iso(job.completed_at),
        "downloadUrl": download_url,
    }
    output = ExportOutput.of(job)
    if output is not None:
        data["output"] = {
            "durationSeconds": output.duration_s,
            "width": output.width,
            "height": output.height,
            "frameRate": output.frame_rate,
            "sizeBytes": output.size_bytes,
            "contentType": output.content_type,
            # Replaced by its presigned URL when sent (`with_signed_urls`).
            POSTER_KEY: output.poster_key,
        }
    return data


def event_body(event: EventType, job: ExportJob) -> str:
    """The stored body; a completed event's `downloadUrl` is signed when it is sent."""
    timestamp = job.created_at if event is EventType.CREATED else job.updated_at
    return encode({"type": event.value, "timestamp": _iso(timestamp), "data": job_data(job)})


def with_signed_urls(body: str, output_key: str, sign: Callable[[str], str | None]) -> str:
    """A completed event's body with its video's and poster's presigned URLs."""
    decoded = json.loads(body)
    data = decoded["data"]
    data["downloadUrl"] = sign(output_key)
    output = data.get("output")
    if isinstance(output, dict):
        poster = output.pop(POSTER_KEY, None)
        output["posterUrl"] = sign(poster) if isinstance(poster, str) else None
    return encode(decoded)


def test_body(now: datetime) -> str:
    return encode({"type": TEST_EVENT, "timestamp": _iso(now), "data": {}})


def encode(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
