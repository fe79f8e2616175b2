"""The export's poster: one frame of its first second, as a JPEG of the export's size.

It is read back from the finished MP4, so it shows exactly what the video shows.
The frame is the last one that starts within the first second (the very first
frame is often a fade or a cut): a shorter export gives its last frame.
"""

from __future__ import annotations

from pathlib import Path

from av.error import FFmpegError
from av.video.frame import VideoFrame
from PIL import Image

from worker.errors import RenderFailed
from worker.media import open_input, reason

POSTER_WITHIN_S = 1.0
JPEG_QUALITY = 90


def write_poster(video: Path, poster: Path) -> None:
    try:
        frame = _poster_frame(video)
        picture = Image.fromarray(frame.to_ndarray(format="rgb24"))
        picture.save(poster, format="JPEG", quality=JPEG_QUALITY)
    except FFmpegError as error:
        raise RenderFailed(f"The poster frame could not be made: {reason(error)}") from error


def _poster_frame(video: Path) -> VideoFrame:
    with open_input(video) as container:
        chosen: VideoFrame | None = None
        start: float | None = None
        for frame in container.decode(container.streams.video[0]):
            time = frame.time or 0.0
            start = time if start is None else start
            if chosen is not None and time - start >= POSTER_WITHIN_S:
                break
            chosen = frame
    if chosen is None:
        raise RenderFailed("The export has no frame for a poster")
    return chosen
