"""The render loop shared by every export kind.

`render` decodes each segment of the source (seeking to it), hands every video
frame in the segment to an edit function, and writes the result, with the
audio of the same segment, to one output. Output timestamps continue from one
segment to the next, so segments play back to back. Encoding runs on its own
thread (`EncoderThread`) while this one decodes and edits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.error import FFmpegError
from av.stream import Stream
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from worker.audio import AudioCutter
from worker.encode import EncoderThread, OutputVideo, Rendered
from worker.errors import RenderFailed
from worker.media import VideoInfo, open_input, reason

# How far past a seek point to look for a decodable frame (about 20 s at 30 fps).
_SEEK_PROBE_PACKETS = 600

FrameEdit = Callable[[VideoFrame, float, int], VideoFrame]
"""(frame, source time in seconds, segment index) -> the frame to encode.

The frame is yuv420p with even sides (odd sources lose their last row or column
to rounding); it may be edited in place after `planes(frame, writable=True)`.
"""
Progress = Callable[[float], None]
"""Called with the fraction of the output rendered so far."""


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float | None
    """None: to the end of the video."""


def render(
    source: Path,
    output: Path,
    *,
    info: VideoInfo,
    size: tuple[int, int],
    segments: Sequence[Segment],
    edit: FrameEdit,
    on_progress: Progress,
) -> Rendered:
    total_s = sum(_length(segment, info) for segment in segments) or 1.0
    timeline = _Timeline()
    try:
        with OutputVideo(
            output,
            width=size[0],
            height=size[1],
            fps=info.fps,
            time_base=info.time_base,
            audio_rate=info.audio_rate,
            audio_channels=info.audio_channels,
        ) as video:
            out = EncoderThread(video)
            try:
                for index, segment in enumerate(segments):
                    window = _Window(info, segment, offset=timeline.next_pts, index=index)
                    with _open_at(source, window) as container:
                        _render_window(
                            container,
                            out,
                            window,
                            timeline,
                            edit=edit,
                            on_progress=lambda pts: on_progress(
                                min(1.0, float(pts * info.time_base) / total_s)
                            ),
                        )
                    timeline.skip_to(window.end_offset)
                return out.close()
            except BaseException:
                out.abort()
                raise
    except FFmpegError as error:
        raise RenderFailed(f"Rendering failed: {reason(error)}") from error


class _Window:
    """One segment in source timestamps. Its ends are snapped to the frame grid so
    that the audio kept matches the frames kept exactly."""

    def __init__(self, info: VideoInfo, segment: Segment, *, offset: int, index: int) -> None:
        self.info = info
        self.offset = offset
        """Output timestamp of the window's first frame."""
        self.index = index
        tb, fps = info.time_base, info.fps
        self.start_s = _snap(segment.start_s, fps)
        self.end_s = None if segment.end_s is None else _snap(segment.end_s, fps)
        self.start_pts = round((info.start_s + self.start_s) / tb)
        self.end_pts = None if self.end_s is None else round((info.start_s + self.end_s) / tb)
        self.frame_ticks = max(1, round(1 / fps / tb))
        self.half_frame = max(1, self.frame_ticks // 2)

    @property
    def needs_seek(self) -> bool:
        return self.start_pts > round(self.info.start_s / self.info.time_base)

    def keeps(self, pts: int) -> bool | None:
        """True inside the window, False before it, None past its end."""
        if pts < self.start_pts - self.half_frame:
            return False
        if self.end_pts is not None and pts >= self.end_pts - self.half_frame:
            return None
        return True

    def time_of(self, pts: int) -> float:
        """Seconds from the video's start."""
        return float((pts - self.start_pts) * self.info.time_base) + self.start_s

    def audio_cutter(self, stream: AudioStream) -> AudioCutter:
        rate = stream.codec_context.sample_rate
        return AudioCutter(
            rate=rate,
            origin_s=self.info.start_s,
            start_sample=round(self.start_s * rate),
            end_sample=None if self.end_s is None else round(self.end_s * rate),
            format_name=stream.codec_context.format.name,
            layout_name=stream.codec_context.layout.name,
        )

    @property
    def end_offset(self) -> int | None:
        """Output timestamp where the next window starts, when the window has an end."""
        if self.end_pts is None:
            return None
        return self.offset + self.end_pts - self.start_pts


class _Timeline:
    """Output video timestamps handed out so far."""

    def __init__(self) -> None:
        self.last_pts = -1
        self.next_pts = 0

    def place(self, pts: int, frame_ticks: int) -> int:
        # Timestamps must increase strictly; a rounding tie moves forward one tick.
        pts = max(pts, self.last_pts + 1)
        self.last_pts = pts
        self.next_pts = max(self.next_pts, pts + frame_ticks)
        return pts

    def skip_to(self, pts: int | None) -> None:
        if pts is not None:
            self.next_pts = max(self.next_pts, pts)


def _render_window(
    container: InputContainer,
    out: EncoderThread,
    window: _Window,
    timeline: _Timeline,
    *,
    edit: FrameEdit,
    on_progress: Callable[[int], None],
) -> None:
    video = container.streams.video[0]
    streams: list[Stream] = [video]
    cutter = None
    if out.has_audio and container.streams.audio:
        streams.append(container.streams.audio[0])
        cutter = window.audio_cutter(container.streams.audio[0])
    video_done = False
    last_pts = window.start_pts - window.frame_ticks
    for packet in container.demux(*streams):
        for frame in packet.decode():
            if isinstance(frame, VideoFrame) and not video_done:
                pts = frame.pts if frame.pts is not None else last_pts + window.frame_ticks
                last_pts = pts
                keep = window.keeps(pts)
                if keep is None:
                    video_done = True
                elif keep:
                    edited = edit(_yuv420p(frame), window.time_of(pts), window.index)
                    placed = timeline.place(
                        window.offset + pts - window.start_pts, window.frame_ticks
                    )
                    out.write_video(edited, placed)
                    on_progress(placed)
            elif isinstance(frame, AudioFrame) and cutter is not None:
                for part in cutter.cut(frame):
                    out.write_audio(part)
        if video_done and (cutter is None or cutter.done):
            break
    if cutter is not None:
        for part in cutter.finish():
            out.write_audio(part)


@contextmanager
def _open_at(source: Path, window: _Window) -> Iterator[InputContainer]:
    """The source positioned at the keyframe at or before the window's start.

    Without an index (MPEG-TS) a seek can land after the start or far from any
    keyframe; the first decodable frame tells, and then decoding starts from the top.
    """
    with open_input(source) as container:
        if not window.needs_seek or _seek(container, container.streams.video[0], window):
            yield container
            return
    with open_input(source) as container:
        yield container


def _seek(container: InputContainer, video: VideoStream, window: _Window) -> bool:
    container.seek(window.start_pts, stream=video, backward=True)
    first = None
    for packets, packet in enumerate(container.demux(video)):
        frames = packet.decode()
        if frames or packets > _SEEK_PROBE_PACKETS:
            first = frames[0].pts if frames else None
            break
    if first is None or first > window.start_pts + window.half_frame:
        return False
    # Seeking flushes the decoders, so the probe leaves nothing behind.
    container.seek(window.start_pts, stream=video, backward=True)
    return True


def _yuv420p(frame: VideoFrame) -> VideoFrame:
    """The frame as yuv420p with even sides (what H.264 4:2:0 can encode)."""
    width, height = frame.width & ~1, frame.height & ~1
    if frame.format.name == "yuv420p" and (width, height) == (frame.width, frame.height):
        return frame
    converted = frame.reformat(width, height, format="yuv420p")
    converted.pts = frame.pts
    return converted


def _length(segment: Segment, info: VideoInfo) -> float:
    end = info.duration_s if segment.end_s is None else segment.end_s
    return max(0.0, end - segment.start_s)


def _snap(seconds: float, fps: Fraction) -> float:
    """The time of the nearest frame, halves rounded up (2.5 frames -> frame 3)."""
    return float(math.floor(seconds * fps + 0.5) / fps)
