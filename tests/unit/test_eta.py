"""The run-time model and the estimates made with it, on fixed histories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gql.jobs.eta import (
    MIN_RUN_S,
    Estimate,
    EtaBasis,
    FinishedRun,
    Running,
    RunTimeModel,
    Waiting,
    queue_estimates,
    running_estimate,
)
from gql.jobs.models import ExportKind

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
FRAMING, ANNOTATE = ExportKind.FRAMING, ExportKind.ANNOTATE
# Framing exports took 10 s plus 2 s per second of video, exactly.
LINE = [FinishedRun(kind=FRAMING, input_seconds=x, run_s=10 + 2 * x) for x in range(5, 45, 5)]
# Annotate exports of unknown length took 10, 20, 30 and 40 s.
SPREAD = [FinishedRun(kind=ANNOTATE, input_seconds=None, run_s=s) for s in (10, 20, 30, 40)]


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def test_a_kind_with_enough_exports_of_known_length_gets_a_line() -> None:
    model = RunTimeModel.fit(LINE)
    assert model.predict(FRAMING, 12.5) == pytest.approx(35.0)
    assert model.predict(FRAMING, None) == pytest.approx(model.kinds[FRAMING].median_s)
    assert model.spread(FRAMING) == pytest.approx((1.0, 1.0))  # it never missed


def test_too_few_exports_of_a_kind_give_no_estimate() -> None:
    model = RunTimeModel.fit(LINE[:2] + SPREAD[:2])
    assert model.predict(FRAMING, 10) is None
    assert model.predict(ANNOTATE, None) is None


def test_without_lengths_the_median_and_the_held_out_spread_of_its_errors() -> None:
    model = RunTimeModel.fit(SPREAD)
    assert model.predict(ANNOTATE, 99.0) == 25.0
    # Each run over the median of the others: 10/30, 20/30, 30/20, 40/20, at the
    # 10th and 90th percentiles.
    low, high = model.spread(ANNOTATE)
    assert low == pytest.approx(1 / 3 + 0.3 * (2 / 3 - 1 / 3))
    assert high == pytest.approx(1.5 + 0.7 * 0.5)


def test_queued_exports_take_the_earliest_free_worker_in_order() -> None:
    model = RunTimeModel.fit(LINE)
    estimates = queue_estimates(
        model,
        NOW,
        running=[],
        waiting=[
            Waiting(job_id="a", kind=FRAMING, input_seconds=10),  # 30 s
            Waiting(job_id="b", kind=FRAMING, input_seconds=20),  # 50 s
            Waiting(job_id="c", kind=FRAMING, input_seconds=5),  # 20 s
        ],
        idle_workers=2,
    )
    assert estimates["a"].starts_at == at(0) and estimates["a"].completes_at == at(30)
    assert estimates["b"].starts_at == at(0) and estimates["b"].completes_at == at(50)
    assert estimates["c"].starts_at == at(30) and estimates["c"].completes_at == at(50)
    assert estimates["c"].basis is EtaBasis.HISTORY


def test_a_running_export_frees_its_worker_when_its_own_estimate_says() -> None:
    model = RunTimeModel.fit(LINE)
    running = [Running(kind=FRAMING, input_seconds=10, elapsed_s=12, progress=0)]
    waiting = [Waiting(job_id="next", kind=FRAMING, input_seconds=5)]
    estimate = queue_estimates(model, NOW, running=running, waiting=waiting)["next"]
    assert estimate.starts_at == at(18)  # 30 s predicted, 12 s done
    assert estimate.completes_at == at(38)


@pytest.mark.parametrize(
    ("progress", "left_s", "basis"),
    [
        (0, 18.0, EtaBasis.HISTORY),  # 30 s predicted, 12 s done
        # 12 s for 60 %: 8 s more by its rate, weighed sqrt(0.6) against the history's 18 s.
        (60, 0.6**0.5 * 8.0 + (1 - 0.6**0.5) * 18.0, EtaBasis.BLENDED),
    ],
)
def test_a_running_export_blends_its_history_with_its_progress(
    progress: int, left_s: float, basis: EtaBasis
) -> None:
    model = RunTimeModel.fit(LINE)
    job = Running(kind=FRAMING, input_seconds=10, elapsed_s=12, progress=progress)
    estimate = running_estimate(model, NOW, job)
    assert estimate is not None
    assert (
        estimate.completes_at == at(left_s)
        or abs((estimate.completes_at - at(left_s)).total_seconds()) < 1e-6
    )
    assert estimate.basis is basis
    assert estimate.starts_at is None


def test_its_progress_counts_from_when_it_was_seen() -> None:
    empty = RunTimeModel.fit([])
    # Half done after 10 s, seen 2 s ago: 20 s in all, 8 s left.
    job = Running(
        kind=FRAMING, input_seconds=None, elapsed_s=12, progress=50, progress_elapsed_s=10
    )
    estimate = running_estimate(empty, NOW, job)
    assert estimate is not None and estimate.completes_at == at(8)


def test_with_no_history_only_its_own_progress_goes_on_and_before_that_nothing() -> None:
    empty = RunTimeModel.fit([])
    moving = Running(kind=FRAMING, input_seconds=10, elapsed_s=10, progress=50)
    estimate = running_estimate(empty, NOW, moving)
    assert estimate is not None and estimate.basis is EtaBasis.PROGRESS_RATE
    assert estimate.completes_at == at(10)
    starting = Running(kind=FRAMING, input_seconds=10, elapsed_s=3, progress=0)
    assert running_estimate(empty, NOW, starting) is None
    waiting = [Waiting(job_id="w", kind=FRAMING, input_seconds=10)]
    assert queue_estimates(empty, NOW, running=[], waiting=waiting) == {}


def test_the_interval_scales_the_time_left_by_the_spread_of_past_errors() -> None:
    model = RunTimeModel.fit(SPREAD)
    low, high = model.spread(ANNOTATE)
    waiting = [Waiting(job_id="w", kind=ANNOTATE, input_seconds=None)]
    estimate = queue_estimates(model, NOW, running=[], waiting=waiting, idle_workers=1)["w"]
    assert estimate.completes_at == at(25)
    assert estimate.completes_at_low == at(25 * low)
    assert estimate.completes_at_high == at(25 * high)


def estimate_ending(seconds: float, basis: EtaBasis = EtaBasis.HISTORY) -> Estimate:
    end = at(seconds)
    return Estimate(
        starts_at=None, completes_at=end, completes_at_low=end, completes_at_high=end, basis=basis
    )


@pytest.mark.parametrize(
    ("published_s", "new_s", "moved"),
    [
        (100, 104, False),  # 4 s of 100 left: under 10 % and under 5 s
        (100, 106, True),  # over 5 s
        (100, 94, True),
        (20, 21.9, False),  # 10 % of 20 s is 2 s
        (20, 22.1, True),
        (600, 604, False),
        (600, 606, True),  # a long wait: 5 s is the bar
    ],
)
def test_an_estimate_is_published_again_when_it_moves_by_10_percent_or_5_s(
    published_s: float, new_s: float, moved: bool
) -> None:
    assert estimate_ending(new_s).moved_from(estimate_ending(published_s), NOW) is moved


def test_runs_timed_at_no_time_count_as_the_shortest_run() -> None:
    zero = FinishedRun(kind=ExportKind.OVERLAY, input_seconds=None, run_s=0.0)
    model = RunTimeModel.fit([zero] * 3)
    assert model.predict(ExportKind.OVERLAY, 10) == MIN_RUN_S
    assert model.spread(ExportKind.OVERLAY) == (1.0, 1.0)


def test_a_length_seen_once_beside_one_other_length_gives_the_median() -> None:
    runs = [FinishedRun(kind=FRAMING, input_seconds=30, run_s=20) for _ in range(7)]
    model = RunTimeModel.fit([*runs, FinishedRun(kind=FRAMING, input_seconds=10, run_s=8)])
    kind = model.kinds[FRAMING]
    assert kind.seconds_per_input_second is None
    assert kind.median_s == 20


def test_a_change_of_basis_is_published_at_once() -> None:
    blended = estimate_ending(100, EtaBasis.BLENDED)
    assert blended.moved_from(estimate_ending(100), NOW)
