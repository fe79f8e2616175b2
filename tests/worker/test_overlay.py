from __future__ import annotations

import pytest

from tests.support.overlay_region import INSIDE_REGION, OUTSIDE_REGION, ellipse_masks, overlay
from tests.support.source_video import FPS, SECONDS
from tests.support.video_checks import decode, mad
from tests.support.worker_jobs import Export


def test_dark_overlay_darkens_outside_the_ellipse_only_during_the_region(
    export: Export, source_video
) -> None:
    run = export("overlay", overlay("DARK_OVERLAY"))

    out, src = decode(run.path), decode(source_video)
    assert len(out.frames) == len(src.frames)
    assert abs(out.duration_s - src.duration_s) <= 1 / FPS
    for index in INSIDE_REGION:
        inside, outside = ellipse_masks(index)
        frame, source = out.frames[index], src.frames[index]
        assert frame[outside].mean() < 0.6 * source[outside].mean()
        assert mad(frame[inside], source[inside]) < 3.0
    for index in OUTSIDE_REGION:
        assert mad(out.frames[index], src.frames[index]) < 2.0


def test_brightness_boost_brightens_inside_the_ellipse_only(export: Export, source_video) -> None:
    run = export("overlay", overlay("BRIGHTNESS_BOOST"))

    out, src = decode(run.path), decode(source_video)
    for index in INSIDE_REGION:
        inside, outside = ellipse_masks(index)
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
