"""Framing: a keyframed crop of the source, scaled to one output size.

The crop rectangle is interpolated per frame, clamped inside the frame and
snapped to even pixels (4:2:0 chroma covers 2x2 luma pixels); swscale does the
scaling. The output lasts as long as the source.
"""

from __future__ import annotations

import math
from pathlib import Path

from av.video.frame import VideoFrame
from av.video.reformatter import VideoReformatter

from worker.encode import Rendered
from worker.media import VideoInfo, planes
from worker.params import FramingParams
from worker.render import Progress, Segment, render
from worker.tracks import Track

# ffmpeg's scale filter default, so output matches an `ffmpeg -vf crop,scale` render.
INTERPOLATION = "BICUBIC"

Rect = tuple[int, int, int, int]


def output_size(params: FramingParams, width: int, height: int) -> tuple[int, int]:
    """The requested size; a missing side keeps the first crop's aspect ratio."""
    first = params.keyframes[0]
    _, _, crop_w, crop_h = clamp_rect(
        first.x, first.y, first.width, first.height, width=width, height=height
    )
    out_w, out_h = params.output_width, params.output_height
    if out_w is None and out_h is None:
        return crop_w, crop_h
    if out_w is None:
        assert out_h is not None
        return max(2, _even(out_h * crop_w / crop_h)), out_h
    if out_h is None:
        return out_w, max(2, _even(out_w * crop_h / crop_w))
    return out_w, out_h


def clamp_rect(x: float, y: float, w: float, h: float, *, width: int, height: int) -> Rect:
    """The rectangle moved and shrunk to fit inside the frame, on even pixels."""
    max_w, max_h = width & ~1, height & ~1
    crop_w = min(max(2, _even(w)), max_w)
    crop_h = min(max(2, _even(h)), max_h)
    left = min(max(0, round(x) & ~1), max_w - crop_w)
    top = min(max(0, round(y) & ~1), max_h - crop_h)
    return left, top, crop_w, crop_h


def render_framing(
    params: FramingParams, source: Path, output: Path, info: VideoInfo, on_progress: Progress
) -> Rendered:
    size = output_size(params, info.width, info.height)
    framer = _Framer(params, info, size)
    return render(
        source,
        output,
        info=info,
        size=size,
        segments=[Segment(0.0, None)],
        edit=framer,
        on_progress=on_progress,
    )


class _Framer:
    def __init__(self, params: FramingParams, info: VideoInfo, size: tuple[int, int]) -> None:
        self._track = Track(
            [key.time for key in params.keyframes],
            [(key.x, key.y, key.width, key.height) for key in params.keyframes],
        )
        self._width, self._height = info.width, info.height
        self._size = size
        # One scaler for the whole render; it keeps its swscale context between frames.
        self._scaler = VideoReformatter()
        # Scratch frame for crops that are scaled afterwards (swscale copies out of it).
        self._scratch: VideoFrame | None = None

    def __call__(self, frame: VideoFrame, t: float, segment: int) -> VideoFrame:
        x, y, w, h = self._track.at(t)
        rect = clamp_rect(x, y, w, h, width=self._width, height=self._height)
        needs_scale = rect[2:] != self._size
        if rect == (0, 0, self._width, self._height):
            cropped = frame
        else:
            cropped = self._crop(frame, rect, reuse=needs_scale)
        if needs_scale:
            return self._scaler.reformat(
                cropped, self._size[0], self._size[1], interpolation=INTERPOLATION
            )
        return cropped

    def _crop(self, frame: VideoFrame, rect: Rect, *, reuse: bool) -> VideoFrame:
        left, top, w, h = rect
        target = self._scratch if reuse else None
        if target is None or (target.width, target.height) != (w, h):
            target = VideoFrame(w, h, "yuv420p")
            if reuse:
                self._scratch = target
        source_planes = planes(frame, writable=False)
        for index, (src, dst) in enumerate(
            zip(source_planes, planes(target, writable=True), strict=True)
        ):
            shift = 0 if index == 0 else 1
            x0, y0 = left >> shift, top >> shift
            dst[:] = src[y0 : y0 + dst.shape[0], x0 : x0 + dst.shape[1]]
        return target


def _even(value: float) -> int:
    """Nearest even integer, halves rounded up (101 -> 102)."""
    return math.floor(value / 2 + 0.5) * 2
