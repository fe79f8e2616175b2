from __future__ import annotations

import math

import numpy as np
from PIL import Image

from tests.support.source_video import FPS, HEIGHT, SECONDS, WIDTH
from tests.support.video_checks import decode, mad
from tests.support.worker_jobs import Export

KEYFRAMES = [
    {"time": 0.0, "x": 40, "y": 20, "width": 160, "height": 90},
    {"time": 1.2, "x": 120, "y": 70, "width": 128, "height": 72},
]


def expected_rect(t: float) -> tuple[int, int, int, int]:
    """The spec, independently: linear between keys, held after the last, even pixels."""
    times = [k["time"] for k in KEYFRAMES]
    x, y, w, h = (
        float(np.interp(t, times, [k[f] for k in KEYFRAMES])) for f in ("x", "y", "width", "height")
    )
    w_even, h_even = math.floor(w / 2 + 0.5) * 2, math.floor(h / 2 + 0.5) * 2
    return round(x) & ~1, round(y) & ~1, w_even, h_even


def test_framing_output_is_the_interpolated_crop_scaled_to_the_requested_size(
    export: Export, source_video
) -> None:
    run = export("framing", {"cropKeyframes": KEYFRAMES, "outputWidth": 192, "outputHeight": 108})

    out, src = decode(run.path), decode(source_video)
    assert run.output == {
        "output_key": "exports/out.mp4",
        "input_duration_s": SECONDS,
        "duration_s": SECONDS,
        "width": 192,
        "height": 108,
        "frames": round(SECONDS * FPS),
        "frame_rate": float(FPS),
        "size_bytes": run.path.stat().st_size,
        "content_type": "video/mp4",
        "poster_key": "exports/out.jpg",
    }
    assert out.frames[0].shape == (108, 192)
    assert abs(out.duration_s - src.duration_s) <= 1 / FPS
    assert len(out.frames) == len(src.frames)
    diffs, shifted = [], []
    for index, (frame, source) in enumerate(zip(out.frames, src.frames, strict=True)):
        x, y, w, h = expected_rect(index / FPS)
        expected = Image.fromarray(source[y : y + h, x : x + w]).resize((192, 108), Image.BICUBIC)
        diffs.append(mad(frame, expected))
        wrong = Image.fromarray(source[y + 8 : y + 8 + h, x + 8 : x + 8 + w])
        shifted.append(mad(frame, wrong.resize((192, 108), Image.BICUBIC)))
    assert max(diffs) < 4.0
    # The comparison can tell an 8-pixel error apart.
    assert min(shifted) > 2 * max(diffs)


def test_framing_defaults_to_the_first_crop_size_and_keeps_the_audio(export: Export) -> None:
    keyframes = [{"time": 0.5, "x": -30, "y": 100, "width": 101, "height": 61}]

    run = export("framing", {"cropKeyframes": keyframes, "outputWidth": None})

    out = decode(run.path)
    assert (run.output["width"], run.output["height"]) == (102, 62)
    assert out.frames[0].shape == (62, 102)
    assert out.audio_s is not None
    assert abs(out.audio_s - SECONDS) < 0.05
    assert out.audio_rms > 0.05


def test_framing_crop_is_clamped_inside_the_frame(export: Export, source_video) -> None:
    # Hangs off the bottom-right corner: it is moved back inside, not shrunk.
    keyframes = [{"time": 0.0, "x": WIDTH - 50, "y": HEIGHT - 30, "width": 100, "height": 60}]

    run = export("framing", {"cropKeyframes": keyframes})

    out, src = decode(run.path), decode(source_video)
    corner = src.frames[0][HEIGHT - 60 :, WIDTH - 100 :]
    assert mad(out.frames[0], corner) < 4.0
