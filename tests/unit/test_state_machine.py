"""The one state machine: `ExportJob.apply` is pure, so it is tested on its own."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gql.jobs.models import Change, ExportStatus
from tests.support.job_models import NOW, job

LATER = NOW + timedelta(seconds=5)


def test_progress_moves_the_job_and_stamps_when_it_started() -> None:
    moved = job().apply(Change(status=ExportStatus.PROCESSING, progress=40), now=LATER)

    assert moved is not None
    assert (moved.status, moved.progress, moved.updated_at) == (ExportStatus.PROCESSING, 40, LATER)
    assert moved.started_at == LATER and moved.completed_at is None
    assert moved.version == 3  # the repository's compare-and-set moves it


def test_progress_never_goes_back_and_a_repeat_changes_nothing() -> None:
    running = job(status=ExportStatus.PROCESSING, progress=60, message="encoding")

    assert running.apply(Change(status=ExportStatus.PROCESSING, progress=20), now=LATER) is None
    repeat = Change(status=ExportStatus.PROCESSING, progress=60, message="encoding")
    assert running.apply(repeat, now=LATER) is None


def test_a_status_never_moves_backwards() -> None:
    running = job(status=ExportStatus.PROCESSING, progress=10)

    assert running.apply(Change(status=ExportStatus.QUEUED), now=LATER) is None


@pytest.mark.parametrize(
    "final", [ExportStatus.COMPLETE, ExportStatus.ERROR, ExportStatus.CANCELLED]
)
def test_a_final_status_is_final(final: ExportStatus) -> None:
    ended = job(status=final, completed_at=NOW)

    for status in ExportStatus:
        assert ended.apply(Change(status=status, progress=99), now=LATER) is None


def test_complete_means_full_progress_and_a_completion_time() -> None:
    done = job(status=ExportStatus.PROCESSING, progress=70).apply(
        Change(status=ExportStatus.COMPLETE, result={"output_key": "out.mp4"}), now=LATER
    )

    assert done is not None
    assert (done.progress, done.completed_at, done.result) == (
        100,
        LATER,
        {"output_key": "out.mp4"},
    )


def test_the_message_follows_the_status_unless_the_worker_says_otherwise() -> None:
    pending = job(status=ExportStatus.PENDING, message="Waiting to be submitted")

    processing = pending.apply(Change(status=ExportStatus.PROCESSING), now=LATER)
    worded = pending.apply(Change(status=ExportStatus.PROCESSING, message="Rendering"), now=LATER)

    assert processing is not None and processing.message != "Waiting to be submitted"
    assert worded is not None and worded.message == "Rendering"
