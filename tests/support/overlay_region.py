"""The overlay tests' highlight: an ellipse crossing the source video, and where to look."""

from __future__ import annotations

from typing import Any

import numpy as np

from tests.support.source_video import FPS, HEIGHT, SECONDS, WIDTH
from tests.support.video_checks import ellipse_mask

START, END = 0.4, 1.2
# The ellipse moves from left to right during the region.
KEYS = [
    {"time": START, "x": 100, "y": 90, "radiusX": 50, "radiusY": 35},
    {"time": END, "x": 220, "y": 90, "radiusX": 50, "radiusY": 35},
]
INSIDE_REGION = range(round(START * FPS) + 2, round(END * FPS) - 1)
OUTSIDE_REGION = [
    *range(round(START * FPS) - 2),
    *range(round(END * FPS) + 3, round(SECONDS * FPS)),
]


def overlay(effect: str) -> dict[str, Any]:
    """The overlay params (the mutation's input without its projectId)."""
    return {
        "effectType": effect,
        "highlightRegions": [{"startTime": START, "endTime": END, "keyframes": KEYS}],
    }


def ellipse_masks(index: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Well inside and well outside the ellipse at frame `index` (its edge is feathered)."""
    share = (index / FPS - START) / (END - START)
    ellipse = {"cx": 100 + 120 * share, "cy": 90.0, "rx": 50.0, "ry": 35.0}
    inside = ellipse_mask((HEIGHT, WIDTH), **ellipse, grow=-4)
    outside = ~ellipse_mask((HEIGHT, WIDTH), **ellipse, grow=4)
    return inside, outside
