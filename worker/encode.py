"""The output file: H.264 (libx264, yuv420p) video and optional AAC audio in MP4.

`EncoderThread` runs the encoding on a thread of its own: PyAV releases the GIL
while FFmpeg works, so decoding and frame edits on the caller's thread overlap
with libx264 instead of waiting for it.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
from av.audio.frame import AudioFrame
from av.video.frame import PictureType, VideoFrame

# Matches the ffmpeg baseline in bench/worker_fps.py: fast, visually clean.
X264_PRESET = "veryfast"
X264_CRF = "20"
AUDIO_BITRATE = 128_000


# What every export is: an MP4 (H.264, AAC).
CONTENT_TYPE = "video/mp4"


@dataclass(frozen=True, kw_only=True)
class Rendered:
    width: int
    height: int
    frames: int
    duration_s: float
    frame_rate: float


class OutputVideo:
    """Encodes frames with timestamps in `time_base` and muxes them as they come."""

    def __init__(
        self,
        path: Path,
        *,
        width: int,
        height: int,
        fps: Fraction,
        time_base: Fraction,
        audio_rate: int | None,
        audio_channels: int = 2,
    ) -> None:
        self._container = av.open(str(path), mode="w", options={"movflags": "+faststart"})
        self._video = self._container.add_stream("libx264", rate=fps)
        self._video.width = width
        self._video.height = height
        self._video.pix_fmt = "yuv420p"
        codec = self._video.codec_context
        codec.time_base = time_base
        # 0: x264 picks its own thread count from the CPUs.
        codec.thread_count = 0
        codec.options = {"preset": X264_PRESET, "crf": X264_CRF}
        self._audio = None
        if audio_rate is not None:
            self._audio = self._container.add_stream("aac", rate=audio_rate)
            self._audio.layout = "mono" if audio_channels == 1 else "stereo"
            self._audio.bit_rate = AUDIO_BITRATE
        self._width = width
        self._height = height
        self._fps = fps
        self._time_base = time_base
        self._audio_rate = audio_rate
        self._frames = 0
        self._last_pts = -1
        self._samples = 0

    @property
    def has_audio(self) -> bool:
        return self._audio is not None

    def write_video(self, frame: VideoFrame, pts: int) -> None:
        """Encode `frame` at `pts` (in `time_base`; strictly increasing)."""
        frame.pts = pts
        frame.time_base = self._time_base
        # A decoded frame keeps its I/P/B type, which libx264 would obey; let x264 choose.
        frame.pict_type = PictureType.NONE
        self._container.mux(self._video.encode(frame))
        self._last_pts = pts
        self._frames += 1

    def write_audio(self, frame: AudioFrame) -> None:
        if self._audio is None or self._audio_rate is None:
            return
        frame.pts = self._samples
        frame.time_base = Fraction(1, self._audio_rate)
        self._samples += frame.samples
        self._container.mux(self._audio.encode(frame))

    def close(self) -> Rendered:
        """Flush the encoders and finish the file."""
        self._container.mux(self._video.encode(None))
        if self._audio is not None:
            self._container.mux(self._audio.encode(None))
        self._container.close()
        end = self._last_pts * self._time_base + 1 / self._fps if self._frames else Fraction(0)
        return Rendered(
            width=self._width,
            height=self._height,
            frames=self._frames,
            duration_s=round(float(end), 3),
            frame_rate=round(float(self._fps), 3),
        )

    def __enter__(self) -> OutputVideo:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            # The file is a temporary one; it is discarded, so skip flushing.
            self._container.close()


class EncoderThread:
    """Feeds an `OutputVideo` from a bounded queue on a background thread.

    An encoding error is raised again on the caller's thread at its next write or
    at `close()`.
    """

    def __init__(self, output: OutputVideo, *, depth: int = 8) -> None:
        self._output = output
        self._queue: queue.Queue[tuple[VideoFrame | AudioFrame, int] | None] = queue.Queue(depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="export-encoder", daemon=True)
        self._thread.start()

    @property
    def has_audio(self) -> bool:
        return self._output.has_audio

    def write_video(self, frame: VideoFrame, pts: int) -> None:
        self._put((frame, pts))

    def write_audio(self, frame: AudioFrame) -> None:
        self._put((frame, 0))

    def close(self) -> Rendered:
        """Wait for every queued frame to be encoded, then finish the file."""
        self._put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._output.close()

    def abort(self) -> None:
        """Stop encoding, dropping queued frames (the output is discarded)."""
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        self._queue.put(None)
        self._thread.join()

    def _put(self, item: tuple[VideoFrame | AudioFrame, int] | None) -> None:
        while True:
            if self._error is not None:
                raise self._error
            try:
                # The timeout keeps a producer from waiting forever on a dead encoder.
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _run(self) -> None:
        try:
            while (item := self._queue.get()) is not None:
                frame, pts = item
                if isinstance(frame, VideoFrame):
                    self._output.write_video(frame, pts)
                else:
                    self._output.write_audio(frame)
        except BaseException as error:
            self._error = error
