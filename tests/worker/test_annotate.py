from __future__ import annotations

from tests.support.source_video import FPS, HEIGHT
from tests.support.video_checks import counter, decode, mad
from tests.support.worker_jobs import Export
from worker.exports.caption import band_top

CLIPS = [
    {"startTime": 1.2, "endTime": 1.8, "name": "Goal", "notes": "Top corner", "rating": 4},
    {"startTime": 0.4, "endTime": 1.0, "name": "Save", "notes": None, "rating": None},
]


def test_annotate_plays_the_clips_in_order_with_captions_only_in_the_band(
    export: Export, source_video
) -> None:
    run = export("annotate", {"clips": CLIPS})

    out, src = decode(run.path), decode(source_video)
    assert run.output["frames"] == 30
    assert abs(run.output["duration_s"] - 1.2) <= 1 / FPS
    assert abs(out.duration_s - 1.2) <= 1 / FPS
    # The frame counter drawn in the source proves which frames were kept, in order.
    expected = [*range(30, 45), *range(10, 25)]
    assert [counter(frame) for frame in out.frames] == expected
    top = band_top(HEIGHT)
    for frame, index in zip(out.frames, expected, strict=True):
        source = src.frames[index]
        # Above the band (a few rows of margin for 4:2:0 chroma and the encoder)...
        assert mad(frame[: top - 4], source[: top - 4]) < 2.0
        # ...unchanged; inside it, the caption.
        assert mad(frame[top:], source[top:]) > 20.0


def test_annotate_audio_is_cut_to_match_the_clips(export: Export) -> None:
    run = export("annotate", {"clips": CLIPS})

    out = decode(run.path)
    assert out.audio_s is not None
    assert abs(out.audio_s - 1.2) < 0.05
    assert out.audio_rms > 0.05


def test_annotate_without_audio_has_no_audio_stream(export: Export, storage, silent_video) -> None:
    storage.put_file("games/silent.mp4", silent_video)

    run = export("annotate", {"clips": CLIPS[:1]}, input_key="games/silent.mp4")

    assert decode(run.path).audio_s is None
    assert run.output["frames"] == 15


def test_long_names_and_notes_are_shortened_to_fit(export: Export) -> None:
    clip = {**CLIPS[0], "name": "A very long clip name " * 20, "notes": "Notes " * 200, "rating": 5}

    run = export("annotate", {"clips": [clip]})

    assert run.output["frames"] == 15


def test_clip_times_between_frames_round_to_the_nearest_frame(export: Export) -> None:
    # 0.42 s and 0.62 s are frames 10.5 and 15.5 at 25 fps: halves round up.
    clip = {"startTime": 0.42, "endTime": 0.62, "name": "Tackle", "notes": None, "rating": 2}

    run = export("annotate", {"clips": [clip]})

    assert [counter(frame) for frame in decode(run.path).frames] == [11, 12, 13, 14, 15]
    assert run.output["duration_s"] == 0.2
