from __future__ import annotations

import itertools

import pytest

from tests.support.worker_jobs import INPUT_KEY, OUTPUT_KEY, Export
from worker.errors import ExportError, InputNotFound, InputUnreadable, InvalidParams

CROP = {"time": 0.0, "x": 10, "y": 10, "width": 100, "height": 60}


@pytest.mark.parametrize(
    "case",
    [
        ("zoom", {}, InvalidParams, "unknown export type 'zoom'"),
        ("framing", {}, InvalidParams, "params.cropKeyframes is missing"),
        ("framing", {"cropKeyframes": []}, InvalidParams, "cropKeyframes must not be empty"),
        (
            "framing",
            {"cropKeyframes": [{**CROP, "width": 0}]},
            InvalidParams,
            "cropKeyframes[0].width must be positive",
        ),
        (
            "framing",
            {"cropKeyframes": [{**CROP, "time": 9.5}]},
            InvalidParams,
            "cropKeyframes[0].time is 9.5s, after the end of the video",
        ),
        (
            "framing",
            {"cropKeyframes": [{**CROP, "x": 500}]},
            InvalidParams,
            "cropKeyframes[0] lies outside the 320x180 frame",
        ),
        (
            "overlay",
            {"effectType": "SEPIA", "highlightRegions": []},
            InvalidParams,
            "unknown effectType 'SEPIA'",
        ),
        (
            "annotate",
            {"clips": [{"startTime": 1.0, "endTime": 3.0, "name": "x"}]},
            InvalidParams,
            "clips[0].endTime is 3s, after the end of the video",
        ),
        (
            "annotate",
            {"clips": [{"startTime": 1.0, "endTime": 0.5, "name": "x"}]},
            InvalidParams,
            "clips[0].endTime must be after its startTime",
        ),
        (
            "annotate",
            {"clips": [{"startTime": 0.0, "endTime": 1.0, "name": "x", "rating": 7}]},
            InvalidParams,
            "clips[0].rating must be between 1 and 5",
        ),
    ],
)
def test_bad_params_fail_with_a_clear_message_and_no_output(export: Export, storage, case) -> None:
    kind, params, error, message = case
    with pytest.raises(error) as raised:
        export(kind, params)

    assert message in str(raised.value)
    assert "\n" not in str(raised.value)
    assert not storage.exists(OUTPUT_KEY)


def test_missing_input_object(export: Export, storage) -> None:
    with pytest.raises(InputNotFound, match=r"'games/nope\.mp4' not found"):
        export("framing", {"cropKeyframes": [CROP]}, input_key="games/nope.mp4")
    assert not storage.exists(OUTPUT_KEY)


def test_unreadable_input(export: Export, storage, tmp_path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    storage.put_file("games/junk.mp4", junk)

    with pytest.raises(InputUnreadable, match="could not be read"):
        export("framing", {"cropKeyframes": [CROP]}, input_key="games/junk.mp4")
    assert not storage.exists(OUTPUT_KEY)


def test_every_failure_is_an_export_error() -> None:
    assert issubclass(InvalidParams, ExportError)
    assert str(InvalidParams()) == "The export parameters are invalid."


def test_progress_is_monotone_frequent_and_reaches_100(export: Export) -> None:
    run = export("overlay", {"effectType": "ORIGINAL", "highlightRegions": []})

    values = [p["progress"] for p in run.progress]
    assert values == sorted(values)
    assert values[0] == 0
    assert run.progress[-1] == {"progress": 100, "message": "Export complete"}
    assert [p["message"] for p in run.progress][:2] == ["Downloading input", "Rendering"]
    # At least every 2 % while rendering (50 frames: a step of about 2 % per frame)...
    rendering = [p["progress"] for p in run.progress if p["message"] == "Rendering"]
    assert max(b - a for a, b in itertools.pairwise(rendering)) <= 4
    # ...and not much more often.
    assert len(run.progress) <= 60


def test_input_key_is_left_in_place(export: Export, storage) -> None:
    export("overlay", {"effectType": "ORIGINAL", "highlightRegions": []})

    assert storage.exists(INPUT_KEY)
    assert storage.exists(OUTPUT_KEY)
