"""Annotate: cut each clip out of the game video, caption it, play the clips back to back."""

from __future__ import annotations

from pathlib import Path

from av.video.frame import VideoFrame

from worker.encode import Rendered
from worker.exports.caption import Caption, make_caption
from worker.media import VideoInfo, planes
from worker.params import AnnotateParams
from worker.render import Progress, Segment, render


def render_annotate(
    params: AnnotateParams, source: Path, output: Path, info: VideoInfo, on_progress: Progress
) -> Rendered:
    width, height = info.width & ~1, info.height & ~1
    captions = [make_caption(clip, width, height) for clip in params.clips]
    return render(
        source,
        output,
        info=info,
        size=(width, height),
        segments=[Segment(clip.start_time, clip.end_time) for clip in params.clips],
        edit=_Captioner(captions),
        on_progress=on_progress,
    )


class _Captioner:
    def __init__(self, captions: list[Caption]) -> None:
        self._captions = captions

    def __call__(self, frame: VideoFrame, t: float, segment: int) -> VideoFrame:
        self._captions[segment].apply(*planes(frame, writable=True))
        return frame
