"""The input video: what it is (`probe`), opening it, and numpy views of its frames."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from av.container import InputContainer
from av.error import FFmpegError
from av.video.frame import VideoFrame

from worker.errors import InputUnreadable

Plane = npt.NDArray[np.uint8]


@dataclass(frozen=True, kw_only=True)
class VideoInfo:
    width: int
    height: int
    fps: Fraction
    time_base: Fraction
    start_s: float
    """Timestamp of the video's start; segment times count from here."""
    duration_s: float
    audio_rate: int | None
    audio_channels: int


def probe(path: Path) -> VideoInfo:
    with open_input(path) as container:
        if not container.streams.video:
            raise InputUnreadable("The input has no video stream")
        video = container.streams.video[0]
        width, height = video.codec_context.width, video.codec_context.height
        if not width or not height:
            raise InputUnreadable("The input video has no picture size")
        fps = video.average_rate or video.guessed_rate or Fraction(25)
        time_base = video.time_base or Fraction(1, 90_000)
        start_s = float(video.start_time * time_base) if video.start_time is not None else 0.0
        if video.duration:
            duration_s = float(video.duration * time_base)
        elif container.duration:
            duration_s = container.duration / av.time_base
        else:
            raise InputUnreadable("The input video has no duration")
        audio = container.streams.audio[0] if container.streams.audio else None
        return VideoInfo(
            width=width,
            height=height,
            fps=Fraction(fps),
            time_base=Fraction(time_base),
            start_s=start_s,
            duration_s=duration_s,
            audio_rate=audio.codec_context.sample_rate if audio else None,
            audio_channels=min(2, audio.codec_context.layout.nb_channels) if audio else 0,
        )


@contextmanager
def open_input(path: Path) -> Iterator[InputContainer]:
    try:
        container = av.open(str(path), mode="r")
    except (FFmpegError, OSError) as error:
        raise InputUnreadable(f"The input video could not be read: {reason(error)}") from None
    try:
        for video in container.streams.video[:1]:
            # Frame and slice threads, as many as there are CPUs.
            video.codec_context.thread_type = "AUTO"
            video.codec_context.thread_count = 0
        yield container
    finally:
        container.close()


def planes(
    frame: VideoFrame, *, writable: bool, padded: bool = False
) -> tuple[Plane, Plane, Plane]:
    """Y, U, V of a yuv420p frame as (height, width) arrays over the frame's memory.

    Writable views first make the frame's data its own: a decoder keeps reference
    frames, and editing those in place would corrupt the frames decoded after.
    `padded` views span whole rows including the alignment padding: contiguous,
    so whole-plane operations run faster on them.
    """
    if writable:
        frame.make_writable()
    views = []
    for plane in frame.planes[:3]:
        rows = np.frombuffer(memoryview(plane), dtype=np.uint8)
        rows = rows.reshape(plane.height, plane.line_size)
        views.append(rows if padded else rows[:, : plane.width])
    return views[0], views[1], views[2]


def reason(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__
