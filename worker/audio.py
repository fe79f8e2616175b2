"""Cutting one time window out of a decoded audio track, sample-exact.

Gaps in the source (a late first packet, a track shorter than the video) are
filled with silence, so each window's audio lasts exactly as long as its
video and concatenated clips stay in sync.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from av.audio.frame import AudioFrame, format_dtypes

# Timestamp rounding jitters by a sample or two; smaller gaps are not padded.
_GAP_TOLERANCE = 32


class AudioCutter:
    """The samples of [start, end) of one track, in order, as frames ready to encode.

    Sample positions count from the video's start (`origin_s`), so audio and video
    windows line up even when the streams start at different times.
    """

    def __init__(
        self,
        *,
        rate: int,
        origin_s: float,
        start_sample: int,
        end_sample: int | None,
        format_name: str,
        layout_name: str,
    ) -> None:
        self._rate = rate
        self._origin_s = origin_s
        self._start = start_sample
        self._length = None if end_sample is None else max(0, end_sample - start_sample)
        self._format = format_name
        self._layout = layout_name
        self._written = 0
        self._next_position: int | None = None

    @property
    def done(self) -> bool:
        return self._length is not None and self._written >= self._length

    def cut(self, frame: AudioFrame) -> list[AudioFrame]:
        """The parts of `frame` inside the window, preceded by silence for any gap."""
        if self.done or frame.samples == 0:
            return []
        position = self._position_of(frame)
        self._next_position = position + frame.samples
        relative = position - self._start
        out: list[AudioFrame] = []
        gap = relative - self._written
        if gap > _GAP_TOLERANCE:
            out.extend(self._silence(self._bounded(gap)))
        elif gap > 0:
            relative = self._written  # close a rounding gap instead of padding it
        first = max(0, self._written - relative)
        last = frame.samples
        if self._length is not None:
            last = min(last, self._length - relative)
        if first < last:
            out.append(_slice(frame, first, last))
            self._written += last - first
        return out

    def finish(self) -> list[AudioFrame]:
        """Silence up to the window's end (when it has one)."""
        if self._length is None or self.done:
            return []
        return self._silence(self._length - self._written)

    def _position_of(self, frame: AudioFrame) -> int:
        if frame.pts is None or frame.time_base is None:
            return self._next_position if self._next_position is not None else self._start
        return round((float(frame.pts * frame.time_base) - self._origin_s) * self._rate)

    def _bounded(self, count: int) -> int:
        if self._length is None:
            return count
        return max(0, min(count, self._length - self._written))

    def _silence(self, count: int) -> list[AudioFrame]:
        frames = []
        while count > 0:
            size = min(count, 4096)
            frames.append(_silent_frame(self._format, self._layout, size, self._rate))
            self._written += size
            count -= size
        return frames


def _slice(frame: AudioFrame, first: int, last: int) -> AudioFrame:
    if first == 0 and last == frame.samples:
        return frame
    data: Any = frame.to_ndarray()
    if frame.format.is_planar:
        part = data[:, first:last]
    else:
        channels = frame.layout.nb_channels
        part = data[:, first * channels : last * channels]
    sliced = AudioFrame.from_ndarray(
        np.ascontiguousarray(part), format=frame.format.name, layout=frame.layout.name
    )
    sliced.sample_rate = frame.sample_rate
    return sliced


def _silent_frame(format_name: str, layout_name: str, samples: int, rate: int) -> AudioFrame:
    template = AudioFrame(format=format_name, layout=layout_name, samples=1)
    channels = template.layout.nb_channels
    shape = (channels, samples) if template.format.is_planar else (1, samples * channels)
    frame = AudioFrame.from_ndarray(
        np.zeros(shape, dtype=np.dtype(format_dtypes[format_name])),
        format=format_name,
        layout=layout_name,
    )
    frame.sample_rate = rate
    return frame
