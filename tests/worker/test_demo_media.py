from __future__ import annotations

import time
from pathlib import Path

import av

from gql.demo.media import make_video
from tests.support.video_checks import counter, decode


def test_make_video_is_fast_and_has_the_requested_shape(tmp_path: Path) -> None:
    started = time.perf_counter()
    path = make_video(tmp_path / "demo.mp4", width=640, height=360, seconds=4.0, fps=25)
    elapsed = time.perf_counter() - started

    assert elapsed < 2.0
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height) == (640, 360)
        assert video.codec_context.name == "h264"
        assert container.streams.audio[0].codec_context.name == "aac"
    decoded = decode(path)
    assert len(decoded.frames) == 100
    assert [counter(frame) for frame in decoded.frames[:5]] == [0, 1, 2, 3, 4]
    assert decoded.audio_s is not None
    assert abs(decoded.audio_s - 4.0) < 0.05


def test_still_pattern_without_audio(tmp_path: Path) -> None:
    path = make_video(tmp_path / "still.mp4", seconds=1.0, audio=False, pattern="still")

    decoded = decode(path)
    assert decoded.audio_s is None
    assert abs(float(decoded.frames[0].mean()) - float(decoded.frames[-1].mean())) < 1.0
