"""Export jobs built in memory with test values, for the tests of pure job logic."""

from __future__ import annotations

from gql.clock import utcnow
from gql.jobs.models import ExportJob, ExportKind, ExportStatus

NOW = utcnow()


def job(**fields: object) -> ExportJob:
    values: dict[str, object] = {
        "id": "job-1",
        "user_id": "user-1",
        "kind": ExportKind.OVERLAY,
        "status": ExportStatus.QUEUED,
        "progress": 0,
        "message": "Queued, waiting for a worker",
        "error": None,
        "project_id": 1,
        "game_id": None,
        "params": {},
        "input_key": "in.mp4",
        "output_key": "out.mp4",
        "runpod_id": "runpod-1",
        "webhook_token": "token",
        "idempotency_key": None,
        "attempts": 1,
        "next_attempt_at": None,
        "cancel_pending": False,
        "retry_of": None,
        "result": None,
        "version": 3,
        "created_at": NOW,
        "updated_at": NOW,
        "started_at": None,
        "completed_at": None,
        **fields,
    }
    return ExportJob(**values)  # type: ignore[arg-type]
