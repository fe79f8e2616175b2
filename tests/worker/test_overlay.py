from __future__ import annotations

import pytest

from tests.worker.conftest import FPS, HEIGHT, SECONDS, WIDTH, Export
from tests.worker.video_checks import decode, ellipse_mask, mad

START, END = 0.4, 1.2
# The ellipse moves from left to right during the region.
KEYS = [
    {"time": START, "x": 100, "y": 90, "radiusX": 50, "radiusY": 35},
    {"time": END, "x": 220, "y": 90, "radiusX": 50, "radiusY": 35},
]
INSIDE_REGION = range(round(START * FPS) + 2, round(END * FPS) - 1)
OUTSIDE_REGION = [
    *range(round(START * FPS) - 2),
    *range(round(END * FPS) + 3, round(SECONDS * FPS)),
]


def overlay(effect: str) -> dict[str, object]:
    return {
        "effectType": effect,
        "highlightRegions": [{"startTime": START, "endTime": END, "keyframes": KEYS}],
    }


def ellipse_at(index: int) -> tuple[float, float, float, float]:
    t = index / FPS
    share = (t - START) / (END - START)
    return 100 + 120 * share, 90.0, 50.0, 35.0


def masks(index: int) -> tuple[object, object]:
    """Well inside and well outside the ellipse (the edge is feathered)."""
    cx, cy, rx, ry = ellipse_at(index)
    inside = ellipse_mask((HEIGHT, WIDTH), cx=cx, cy=cy, rx=rx, ry=ry, grow=-4)
    outside = ~ellipse_mask((HEIGHT, WIDTH), cx=cx, cy=cy, rx=rx, ry=ry, grow=4)
    return inside, outside


def test_dark_overlay_darkens_outside_the_ellipse_only_during_the_region(
    export: Export, source_video
) -> None:
    run = export("overlay", overlay("DARK_OVERLAY"))

    out, src = decode(run.path), decode(source_video)
    assert len(out.frames) == len(src.frames)
    assert abs(out.duration_s - src.duration_s) <= 1 / FPS
    for index in INSIDE_REGION:
        inside, outside = masks(index)
        frame, source = out.frames[index], src.frames[index]
        assert frame[outside].mean() < 0.6 * source[outside].mean()
        assert mad(frame[inside], source[inside]) < 3.0
    for index in OUTSIDE_REGION:
        assert mad(out.frames[index], src.frames[index]) < 2.0


def test_brightness_boost_brightens_inside_the_ellipse_only(export: Export, source_video) -> None:
    run = export("overlay", overlay("BRIGHTNESS_BOOST"))

    out, src = decode(run.path), decode(source_video)
    for index in INSIDE_REGION:
        inside, outside = masks(index)
        frame, source = out.frames[index], src.frames[index]
        assert frame[inside].mean() > source[inside].mean() + 15
        assert mad(frame[outside], source[outside]) < 2.0
    for index in OUTSIDE_REGION:
        assert mad(out.frames[index], src.frames[index]) < 2.0


@pytest.mark.parametrize("with_regions", [True, False])
def test_original_re_encodes_the_source_unchanged(
    export: Export, source_video, with_regions: bool
) -> None:
    params = overlay("ORIGINAL")
    if not with_regions:
        params["highlightRegions"] = []

    run = export("overlay", params)

    out, src = decode(run.path), decode(source_video)
    assert len(out.frames) == len(src.frames)
    assert max(mad(a, b) for a, b in zip(out.frames, src.frames, strict=True)) < 2.0
    assert out.audio_s is not None
    assert abs(out.audio_s - SECONDS) < 0.05
