"""The handler's report of what it stored: the video's figures and its poster frame."""

from __future__ import annotations

from typing import Any

import pytest

from clients.storage import LocalStorage
from tests.support.posters import frame_shown, read_jpeg
from tests.support.source_video import FPS, SECONDS
from tests.support.worker_jobs import OUTPUT_KEY, POSTER_KEY, Export

# kind: (params, the output's width and height, its length in seconds)
CASES: dict[str, tuple[dict[str, Any], tuple[int, int], float]] = {
    "framing": (
        {
            "cropKeyframes": [{"time": 0, "x": 20, "y": 10, "width": 160, "height": 90}],
            "outputWidth": 240,
            "outputHeight": 136,
        },
        (240, 136),
        SECONDS,
    ),
    "overlay": ({"effectType": "ORIGINAL", "highlightRegions": []}, (320, 180), SECONDS),
    "annotate": (
        {"clips": [{"startTime": 0.4, "endTime": 1.6, "name": "Goal", "rating": 3}]},
        (320, 180),
        1.2,
    ),
}


@pytest.mark.parametrize("kind", CASES)
def test_the_report_describes_the_stored_video_and_its_poster(
    export: Export, storage: LocalStorage, kind: str
) -> None:
    params, (width, height), seconds = CASES[kind]

    run = export(kind, params)

    assert run.output == {
        "output_key": OUTPUT_KEY,
        "input_duration_s": SECONDS,
        "duration_s": seconds,
        "width": width,
        "height": height,
        "frames": round(seconds * FPS),
        "frame_rate": float(FPS),
        "size_bytes": run.path.stat().st_size,
        "content_type": "video/mp4",
        "poster_key": POSTER_KEY,
    }
    poster = read_jpeg(storage.path_of(POSTER_KEY).read_bytes())
    assert poster.shape == (height, width, 3)
    # The last frame starting within the first second: 0.96 s at 25 fps.
    assert frame_shown(poster, run.path) == FPS - 1


def test_a_poster_shorter_than_a_second_is_the_last_frame(
    export: Export, storage: LocalStorage
) -> None:
    run = export("annotate", {"clips": [{"startTime": 0.0, "endTime": 0.4, "name": "Quick"}]})

    assert run.output["frames"] == 10
    poster = read_jpeg(storage.path_of(POSTER_KEY).read_bytes())
    assert frame_shown(poster, run.path) == 9


def test_without_a_poster_key_no_poster_is_written(export: Export, storage: LocalStorage) -> None:
    run = export("overlay", {"effectType": "ORIGINAL", "highlightRegions": []}, poster_key=None)

    assert run.output["poster_key"] is None
    assert storage.exists(OUTPUT_KEY)
    assert not storage.exists(POSTER_KEY)
