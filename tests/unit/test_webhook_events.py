"""Which event a job change causes, its body, and how progress is merged."""

from __future__ import annotations

import json

import pytest

from gql.config.webhook_values import ALL_EVENTS, DEFAULT_EVENTS, EventType
from gql.jobs.models import ExportStatus
from gql.webhooks.events import event_body, event_for, with_signed_urls
from gql.webhooks.writer import OutboxWriter
from tests.support.job_models import job

PENDING = job(status=ExportStatus.PENDING, version=1)
QUEUED = job(status=ExportStatus.QUEUED, version=2)
RUNNING = job(status=ExportStatus.PROCESSING, progress=10, message="Rendering", version=3)


@pytest.mark.parametrize(
    ("before", "after", "event"),
    [
        (None, PENDING, EventType.CREATED),
        (PENDING, QUEUED, EventType.QUEUED),
        (QUEUED, RUNNING, EventType.STARTED),
        (PENDING, RUNNING, EventType.STARTED),
        (RUNNING, RUNNING.evolve(progress=20), EventType.PROGRESS),
        (RUNNING, RUNNING.evolve(message="Encoding"), EventType.PROGRESS),
        (RUNNING, job(status=ExportStatus.COMPLETE, progress=100), EventType.COMPLETED),
        (QUEUED, job(status=ExportStatus.ERROR, error="broke"), EventType.FAILED),
        (PENDING, job(status=ExportStatus.CANCELLED), EventType.CANCELLED),
        (QUEUED, QUEUED.evolve(runpod_id="another", attempts=2), None),
    ],
)
def test_the_event_a_change_causes(before, after, event) -> None:  # type: ignore[no-untyped-def]
    assert event_for(before, after) == event


def test_the_body_is_the_job_as_the_api_shows_it_with_its_user_and_version() -> None:
    done = job(
        status=ExportStatus.COMPLETE,
        progress=100,
        result={"output_key": "out.mp4", "duration_s": 2.0, "width": 320, "poster_key": "out.jpg"},
        version=7,
    )
    stored = event_body(EventType.COMPLETED, done)
    body = json.loads(with_signed_urls(stored, "out.mp4", lambda key: f"https://dl/{key}"))
    assert body["type"] == "export.completed"
    assert body["timestamp"] == done.updated_at.isoformat()
    data = body["data"]
    assert (data["id"], data["userId"], data["version"]) == ("job-1", "user-1", 7)
    assert (data["kind"], data["status"], data["progress"]) == ("OVERLAY", "COMPLETE", 100)
    assert data["downloadUrl"] == "https://dl/out.mp4"
    assert data["output"] == {
        "durationSeconds": 2.0,
        "width": 320,
        "height": None,
        "frameRate": None,
        "sizeBytes": None,
        "contentType": "video/mp4",
        "posterUrl": "https://dl/out.jpg",
    }


def test_progress_replaces_the_waiting_one_and_a_final_event_any_waiting_progress() -> None:
    writer = OutboxWriter(events=ALL_EVENTS, progress_interval_s=1)
    progress = writer.statements(RUNNING, RUNNING.evolve(progress=20))
    assert [s.name for s in progress] == ["supersede_webhook_progress", "insert_webhook_progress"]
    assert progress[1].values["interval"] == 1.0
    final = writer.statements(RUNNING, RUNNING.evolve(status=ExportStatus.CANCELLED))
    assert [s.name for s in final] == ["supersede_webhook_progress", "insert_webhook_event"]
    started = writer.statements(QUEUED, RUNNING)
    assert [s.name for s in started] == ["insert_webhook_event"]


def test_events_left_out_of_the_filter_write_nothing() -> None:
    writer = OutboxWriter(events=DEFAULT_EVENTS, progress_interval_s=1)
    assert writer.statements(RUNNING, RUNNING.evolve(progress=20)) == []
    final = writer.statements(RUNNING, RUNNING.evolve(status=ExportStatus.CANCELLED))
    assert [s.name for s in final] == ["insert_webhook_event"]
    assert EventType.PROGRESS not in DEFAULT_EVENTS


def test_each_event_has_its_own_webhook_id() -> None:
    writer = OutboxWriter(events=ALL_EVENTS, progress_interval_s=1)
    ids = {writer.statements(None, PENDING)[0].values["webhook_id"] for _ in range(3)}
    assert len(ids) == 3
    assert all(webhook_id.startswith("msg_") for webhook_id in ids)
