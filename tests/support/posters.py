"""Poster frames: decoding one as a JPEG, and finding which frame of its video it shows."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from PIL import Image

from tests.support.video_checks import mad

Picture = npt.NDArray[np.uint8]


def read_jpeg(data: bytes) -> Picture:
    """The picture as RGB rows; fails unless `data` is a JPEG."""
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG", image.format
        return np.asarray(image.convert("RGB"))


def frame_shown(poster: Picture, video: Path) -> int:
    """The index of the video's frame the poster looks most like."""
    with av.open(str(video)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    return min(range(len(frames)), key=lambda index: mad(poster, frames[index]))
