"""Keyframed values over time (crop rectangles, ellipses)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class Track:
    """Values at key times, linearly interpolated between them and held before the
    first and after the last key."""

    def __init__(self, times: Sequence[float], values: Sequence[Sequence[float]]) -> None:
        if not times or len(times) != len(values):
            raise ValueError("a track needs one value row per key time")
        self._times = np.asarray(times, dtype=np.float64)
        self._columns = np.asarray(values, dtype=np.float64).T.copy()

    def at(self, t: float) -> tuple[float, ...]:
        if len(self._times) == 1:
            return tuple(float(v) for v in self._columns[:, 0])
        return tuple(float(np.interp(t, self._times, column)) for column in self._columns)
