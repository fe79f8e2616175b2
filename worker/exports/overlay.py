"""Overlay: spotlight a moving ellipse during highlight regions.

BRIGHTNESS_BOOST lifts the luma inside the ellipse; DARK_OVERLAY darkens and
desaturates everything outside it; ORIGINAL re-encodes untouched. Frames
outside every region are encoded as decoded. Work is done on the yuv420p
planes in place: integer shifts over whole planes, float blending only inside
the ellipse's bounding box, whose edge is feathered over a few pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from av.video.frame import VideoFrame

from worker.encode import Rendered
from worker.media import Plane, VideoInfo, planes
from worker.params import Effect, HighlightRegion, OverlayParams
from worker.render import Progress, Segment, render
from worker.tracks import Track

FEATHER_PX = 3.0
_LEVELS = np.arange(256, dtype=np.float32)
# Video-range luma: black is 16, white 235.
BOOST_LUMA = np.clip(_LEVELS + 0.35 * (235.0 - _LEVELS), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Ellipse:
    cx: float
    cy: float
    rx: float
    ry: float


def render_overlay(
    params: OverlayParams, source: Path, output: Path, info: VideoInfo, on_progress: Progress
) -> Rendered:
    return render(
        source,
        output,
        info=info,
        size=(info.width & ~1, info.height & ~1),
        segments=[Segment(0.0, None)],
        edit=_Highlighter(params),
        on_progress=on_progress,
    )


class _Region:
    def __init__(self, region: HighlightRegion) -> None:
        self.start = region.start_time
        self.end = region.end_time
        self._track = Track(
            [key.time for key in region.keyframes],
            [(key.x, key.y, key.radius_x, key.radius_y) for key in region.keyframes],
        )

    def ellipse_at(self, t: float) -> Ellipse:
        return Ellipse(*self._track.at(t))


class _Highlighter:
    def __init__(self, params: OverlayParams) -> None:
        self._effect = params.effect
        self._regions = [_Region(region) for region in params.regions]
        self._scratch: Plane | None = None

    def __call__(self, frame: VideoFrame, t: float, segment: int) -> VideoFrame:
        if self._effect is Effect.ORIGINAL:
            return frame
        ellipses = [r.ellipse_at(t) for r in self._regions if r.start <= t <= r.end]
        if not ellipses:
            return frame
        if self._effect is Effect.BRIGHTNESS_BOOST:
            y = planes(frame, writable=True)[0]
            for ellipse in ellipses:
                _blend_lut(y, ellipse, 1.0, BOOST_LUMA)
        else:
            rows = planes(frame, writable=True, padded=True)
            if self._scratch is None or self._scratch.shape != rows[0].shape:
                self._scratch = np.empty_like(rows[0])
            _darken_outside(rows, frame.width, ellipses, self._scratch)
        return frame


def _darken_outside(
    rows: tuple[Plane, Plane, Plane], width: int, ellipses: list[Ellipse], scratch: Plane
) -> None:
    """Darken whole padded planes, then blend the ellipses back from a copy."""
    y, u, v = rows[0][:, :width], rows[1][:, : (width + 1) // 2], rows[2][:, : (width + 1) // 2]
    kept = []
    for plane, scale in ((y, 1.0), (u, 0.5), (v, 0.5)):
        for ellipse in ellipses:
            box = _box(ellipse, scale, plane.shape)
            if box is not None:
                kept.append((plane, ellipse, scale, box, plane[box].copy()))
    # Luma 16 + (Y - 16) * 3/8 and chroma 128 + (C - 128) / 2, as in-place integer shifts:
    # several times faster than a lookup table over a whole plane.
    luma = rows[0]
    np.right_shift(luma, 2, out=scratch)
    np.right_shift(luma, 3, out=luma)
    np.add(luma, scratch, out=luma)
    np.add(luma, 10, out=luma)
    for chroma in rows[1:]:
        np.right_shift(chroma, 1, out=chroma)
        np.add(chroma, 64, out=chroma)
    for plane, ellipse, scale, box, original in kept:
        # Blending from the pre-darkening copy makes overlapping spotlights a union.
        region = plane[box]
        alpha = _alpha(ellipse, scale, box)
        region[...] = region + (original - region.astype(np.float32)) * alpha


def _blend_lut(plane: Plane, ellipse: Ellipse, scale: float, lut: npt.NDArray[np.uint8]) -> None:
    box = _box(ellipse, scale, plane.shape)
    if box is None:
        return
    region = plane[box]
    alpha = _alpha(ellipse, scale, box)
    boosted = lut[region].astype(np.float32)
    region[...] = (region + (boosted - region) * alpha).astype(np.uint8)


Box = tuple[slice, slice]


def _box(ellipse: Ellipse, scale: float, shape: tuple[int, ...]) -> Box | None:
    """The ellipse's bounding box (plus the feather) in a plane `scale` times the frame."""
    pad = FEATHER_PX
    x0 = max(0, int((ellipse.cx - ellipse.rx - pad) * scale))
    x1 = min(shape[1], int((ellipse.cx + ellipse.rx + pad) * scale) + 2)
    y0 = max(0, int((ellipse.cy - ellipse.ry - pad) * scale))
    y1 = min(shape[0], int((ellipse.cy + ellipse.ry + pad) * scale) + 2)
    if x0 >= x1 or y0 >= y1:
        return None
    return slice(y0, y1), slice(x0, x1)


def _alpha(ellipse: Ellipse, scale: float, box: Box) -> npt.NDArray[np.floating[Any]]:
    """1 inside the ellipse, 0 outside, a linear ramp FEATHER_PX wide across the edge."""
    # Pixel centres, in frame coordinates.
    xs = (np.arange(box[1].start, box[1].stop, dtype=np.float32) + 0.5) / scale
    ys = (np.arange(box[0].start, box[0].stop, dtype=np.float32) + 0.5) / scale
    dx = ((xs - ellipse.cx) / ellipse.rx) ** 2
    dy = ((ys - ellipse.cy) / ellipse.ry) ** 2
    radius = np.sqrt(dy[:, None] + dx[None, :])
    # (1 - r) times the mean radius approximates the distance to the edge in pixels.
    edge = (1.0 - radius) * (0.5 * (ellipse.rx + ellipse.ry)) / FEATHER_PX + 0.5
    return np.clip(edge, 0.0, 1.0)
