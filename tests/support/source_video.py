"""The small real video the export tests read: its size, length and frame rate."""

from __future__ import annotations

from pathlib import Path

from gql.demo.media import make_video

WIDTH, HEIGHT, SECONDS, FPS = 320, 180, 2.0, 25


def write_source_video(path: Path, *, audio: bool = True) -> Path:
    """320x180, 2 s at 25 fps, with a moving disc, a frame counter and (with audio) a tone."""
    return make_video(path, width=WIDTH, height=HEIGHT, seconds=SECONDS, fps=FPS, audio=audio)
