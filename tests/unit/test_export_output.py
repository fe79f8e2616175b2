"""Reading a worker's report into `ExportOutput`: only what it holds, only what is sane."""

from __future__ import annotations

from gql.jobs.models import ExportStatus
from gql.jobs.output import ExportOutput, poster_key
from tests.support.job_models import job

OUTPUT_KEY = "final_videos/overlay_job-1.mp4"
REPORT = {
    "output_key": OUTPUT_KEY,
    "duration_s": 30.0,
    "width": 640,
    "height": 360,
    "frames": 750,
    "frame_rate": 29.97,
    "size_bytes": 5_000_000_000,
    "content_type": "video/mp4",
    "poster_key": "final_videos/overlay_job-1.jpg",
}


def complete(result: dict[str, object] | None) -> ExportOutput | None:
    return ExportOutput.of(job(status=ExportStatus.COMPLETE, output_key=OUTPUT_KEY, result=result))


def test_the_poster_lies_beside_the_video() -> None:
    assert poster_key(OUTPUT_KEY) == "final_videos/overlay_job-1.jpg"
    assert poster_key("working_videos/framing_x.mp4") == "working_videos/framing_x.jpg"


def test_a_full_report_is_read_as_it_came() -> None:
    assert complete(REPORT) == ExportOutput(
        duration_s=30.0,
        width=640,
        height=360,
        frame_rate=29.97,
        size_bytes=5_000_000_000,
        content_type="video/mp4",
        poster_key="final_videos/overlay_job-1.jpg",
    )


def test_only_a_complete_export_has_an_output() -> None:
    for status in set(ExportStatus) - {ExportStatus.COMPLETE}:
        assert ExportOutput.of(job(status=status, result=REPORT)) is None


def test_without_a_report_only_the_type_named_by_the_key_is_known() -> None:
    assert complete(None) == ExportOutput(
        duration_s=None,
        width=None,
        height=None,
        frame_rate=None,
        size_bytes=None,
        content_type="video/mp4",
        poster_key=None,
    )


def test_values_of_the_wrong_kind_are_left_out() -> None:
    odd = {
        "duration_s": float("nan"),
        "width": 0,
        "height": 360.0,
        "frame_rate": -25,
        "size_bytes": True,
        "content_type": 42,
        "poster_key": "final_videos/overlay_job-2.jpg",
    }

    assert complete(odd) == complete(None)
