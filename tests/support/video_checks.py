"""Decoding outputs for pixel-level assertions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

Plane = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Decoded:
    frames: list[Plane]
    """Luma planes in presentation order."""
    times: list[float]
    fps: float
    duration_s: float
    audio_s: float | None
    """Decoded audio length in seconds; None without an audio stream."""
    audio_rms: float


def decode(path: Path) -> Decoded:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        fps = float(video.average_rate or 25)
        frames, times = [], []
        for frame in container.decode(video):
            frames.append(frame.to_ndarray(format="gray").astype(np.uint8))
            times.append(float(frame.time or 0.0))
    audio_s, rms = None, 0.0
    with av.open(str(path)) as container:
        if container.streams.audio:
            stream = container.streams.audio[0]
            samples = [f.to_ndarray() for f in container.decode(stream)]
            data = np.concatenate(samples, axis=1) if samples else np.zeros((1, 0))
            audio_s = data.shape[1] / stream.codec_context.sample_rate
            rms = float(np.sqrt(np.mean(np.square(data)))) if data.size else 0.0
    duration = times[-1] + 1 / fps if times else 0.0
    return Decoded(frames, times, fps, duration, audio_s, rms)


def mad(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Mean absolute difference of two pictures."""
    return float(np.mean(np.abs(np.asarray(a, dtype=np.float32) - np.asarray(b, dtype=np.float32))))


def counter(luma: Plane, bits: int = 12) -> int:
    """The frame index `gql.demo.media` draws as 8x8 blocks in the top-left corner."""
    value = 0
    for bit in range(bits):
        value = value << 1 | int(luma[1:7, bit * 8 + 1 : bit * 8 + 7].mean() > 128)
    return value


def ellipse_mask(
    shape: tuple[int, ...], *, cx: float, cy: float, rx: float, ry: float, grow: float = 0.0
) -> npt.NDArray[np.bool_]:
    """Pixels whose centre lies inside the ellipse with both radii grown by `grow` pixels."""
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32) + 0.5
    return ((xs - cx) / (rx + grow)) ** 2 + ((ys - cy) / (ry + grow)) ** 2 <= 1.0
