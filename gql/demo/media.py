"""Small real videos for demos and tests, generated with PyAV in a fraction of a second.

The picture has content everywhere (so a wrong crop or a misplaced effect shows up
in a pixel comparison): a two-axis colour gradient with a grid, a bright disc that
moves across the frame, and the frame index drawn as binary bars in the top-left
corner. The audio is a quiet 440 Hz tone.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np
import numpy.typing as npt

Pattern = Literal["moving", "still"]

AUDIO_RATE = 48_000
_AUDIO_FRAME = 1024
_COUNTER_BITS = 12
_GRID_STEP = 32


def make_video(
    path: Path,
    *,
    width: int = 640,
    height: int = 360,
    seconds: float = 4.0,
    fps: int = 25,
    audio: bool = True,
    pattern: Pattern = "moving",
) -> Path:
    """Write an H.264/AAC MP4 of `seconds` at `fps`; "still" repeats one picture."""
    if width % 2 or height % 2 or width < 32 or height < 32:
        raise ValueError("width and height must be even and at least 32")
    frames = max(1, round(seconds * fps))
    path.parent.mkdir(parents=True, exist_ok=True)
    background = _background(width, height)
    disc = _disc_mask(max(4, height // 8))
    with av.open(str(path), mode="w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width = width
        video.height = height
        video.pix_fmt = "yuv420p"
        # A keyframe every two seconds, like camera footage, so seeking is exercised.
        video.codec_context.gop_size = 2 * fps
        video.codec_context.options = {"preset": "ultrafast", "crf": "18"}
        video.codec_context.thread_count = 0
        sound = None
        if audio:
            sound = container.add_stream("aac", rate=AUDIO_RATE)
            sound.layout = "stereo"
        picture = np.empty_like(background)
        samples_done = 0
        for index in range(frames):
            np.copyto(picture, background)
            moving = pattern == "moving"
            _draw_disc(picture, disc, width, height, index / fps if moving else 0.0)
            if moving:
                _draw_counter(picture, index)
            frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            container.mux(video.encode(frame))
            if sound is not None:
                target = round((index + 1) / fps * AUDIO_RATE)
                while samples_done < target:
                    count = min(_AUDIO_FRAME, target - samples_done)
                    container.mux(sound.encode(_tone(samples_done, count)))
                    samples_done += count
        container.mux(video.encode(None))
        if sound is not None:
            container.mux(sound.encode(None))
    return path


def _background(width: int, height: int) -> npt.NDArray[np.uint8]:
    """yuv420p picture (height * 3/2 rows): luma and chroma gradients plus a grid."""
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)
    luma = 50.0 + 90.0 * xs[None, :] + 50.0 * ys[:, None]
    grid = np.zeros((height, width), dtype=bool)
    grid[::_GRID_STEP, :] = True
    grid[:, ::_GRID_STEP] = True
    luma[grid] += 35.0
    cw, ch = width // 2, height // 2
    u = 90.0 + 76.0 * np.linspace(0.0, 1.0, cw, dtype=np.float32)[None, :] + np.zeros((ch, 1))
    v = 166.0 - 76.0 * np.linspace(0.0, 1.0, ch, dtype=np.float32)[:, None] + np.zeros((1, cw))
    picture = np.empty((height * 3 // 2, width), dtype=np.uint8)
    picture[:height] = np.clip(luma, 16, 235).astype(np.uint8)
    chroma = picture[height:].reshape(2, ch, cw)
    chroma[0] = u.astype(np.uint8)
    chroma[1] = v.astype(np.uint8)
    return picture


def _disc_mask(radius: int) -> npt.NDArray[np.bool_]:
    axis = np.arange(-radius, radius, dtype=np.float32) + 0.5
    return np.asarray(axis[None, :] ** 2 + axis[:, None] ** 2 <= radius * radius)


def _draw_disc(
    picture: npt.NDArray[np.uint8], disc: npt.NDArray[np.bool_], width: int, height: int, t: float
) -> None:
    size = disc.shape[0]
    # A slow Lissajous path that stays inside the frame.
    cx = (width - size) * (0.5 + 0.45 * math.sin(2 * math.pi * 0.23 * t))
    cy = (height - size) * (0.5 + 0.45 * math.sin(2 * math.pi * 0.31 * t + 1.0))
    x, y = int(cx) & ~1, int(cy) & ~1
    picture[y : y + size, x : x + size][disc] = 230
    half = disc[::2, ::2]
    ch, cw = height // 2, width // 2
    chroma = picture[height:].reshape(2, ch, cw)
    chroma[0, y // 2 : y // 2 + half.shape[0], x // 2 : x // 2 + half.shape[1]][half] = 110
    chroma[1, y // 2 : y // 2 + half.shape[0], x // 2 : x // 2 + half.shape[1]][half] = 150


def _draw_counter(picture: npt.NDArray[np.uint8], index: int) -> None:
    """The frame index in binary, most significant bit first, as 8x8 luma blocks."""
    for bit in range(_COUNTER_BITS):
        value = 235 if index >> (_COUNTER_BITS - 1 - bit) & 1 else 16
        picture[0:8, bit * 8 : bit * 8 + 8] = value


def _tone(start: int, count: int) -> av.AudioFrame:
    t = (np.arange(start, start + count, dtype=np.float64)) / AUDIO_RATE
    wave = (0.2 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    frame = av.AudioFrame.from_ndarray(np.stack([wave, wave]), format="fltp", layout="stereo")
    frame.sample_rate = AUDIO_RATE
    frame.pts = start
    frame.time_base = Fraction(1, AUDIO_RATE)
    return frame
