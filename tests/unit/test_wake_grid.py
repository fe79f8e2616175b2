"""Followers wake on a shared grid, and still poll once per interval."""

from __future__ import annotations

import random

import pytest

from gql.tracking.wake_grid import on_grid

GRID_S = 0.05


@pytest.mark.parametrize("moment", [0.0, 0.024, 0.026, 12.3456, 1_000_000.0371])
def test_a_wake_up_moves_to_the_nearest_point_of_the_grid(moment: float) -> None:
    woken = on_grid(moment, GRID_S)
    assert abs(woken - moment) <= GRID_S / 2 + 1e-9
    assert round(woken / GRID_S) * GRID_S == pytest.approx(woken, abs=1e-9)


def test_wake_ups_due_within_one_slot_share_it() -> None:
    due = [100.0 + offset for offset in (-0.02, -0.01, 0.0, 0.01, 0.024)]
    assert len({on_grid(moment, GRID_S) for moment in due}) == 1


@pytest.mark.parametrize("interval_s", [1.0, 0.5, 2.0])
def test_polls_stay_one_per_interval_however_late_each_wakes(interval_s: float) -> None:
    # A follower polls when it wakes and sleeps until one interval after that
    # poll began; waking late by up to 40 % of a slot must not stretch the period.
    lateness = random.Random(7)
    polled_at = [3.0123]
    for _ in range(1000):
        woken = on_grid(polled_at[-1] + interval_s, GRID_S)
        polled_at.append(woken + lateness.uniform(0.0, 0.4 * GRID_S))
    mean_period = (polled_at[-1] - polled_at[1]) / (len(polled_at) - 2)
    assert mean_period == pytest.approx(interval_s, abs=GRID_S / 100)
