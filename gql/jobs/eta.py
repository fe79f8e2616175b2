"""How long exports take: a run-time model fitted on finished exports, and estimates.

- **Run time** of an export, from its kind and the seconds of video it processes:
  per kind, a least-squares line through this service's finished exports (RunPod's
  executionTime against their length) once `MIN_FIT_SAMPLES` have a known length,
  else the kind's median; none below `MIN_SAMPLES`.
- **The spread of its errors**: each finished export's run time over what the
  model predicts for it when fitted without it (leave-one-out), at the 10th and
  90th percentiles; an estimate's interval scales the time left by those.
- **A queued export's start**: the exports ahead of it, in order, take the
  earliest free worker each, on the workers RunPod reports (running and idle),
  those running now freeing as their own estimates say.
- **A running export's end**: the history's estimate of the time left, blended
  with the rate of its own progress (elapsed * (100 - p) / p), the more so the
  further it is (weight sqrt(p / 100): a tenth done already weighs a third).
- **The interval, once estimates have a record** (`EstimateRecord`): the time
  each past estimate of the same phase (waiting, running) gave, against the time
  it really took, at the 10th and 90th percentiles, applied to the time left
  now; until then, the run-time model's spread.

Everything here is pure: the waiting room (`gql.tracking.waiting_room`) feeds it.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import statistics
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from gql.jobs.models import ExportKind

MIN_SAMPLES = 3
MIN_FIT_SAMPLES = 8
# Nobody finishes in no time: floors for predicted runs and for time left.
MIN_RUN_S = 1.0
MIN_LEFT_S = 0.2
LOW_QUANTILE, HIGH_QUANTILE = 0.1, 0.9


class EtaBasis(StrEnum):
    HISTORY = "history"
    """From past exports' run times alone."""
    PROGRESS_RATE = "progress_rate"
    """From the rate of this export's own progress alone."""
    BLENDED = "blended"
    """Both, the progress rate weighing more as it advances."""


@dataclass(frozen=True, kw_only=True)
class FinishedRun:
    kind: ExportKind
    input_seconds: float | None
    run_s: float


@dataclass(frozen=True, kw_only=True)
class KindModel:
    intercept_s: float
    seconds_per_input_second: float | None
    """None: the median alone (too few exports of known length)."""
    median_s: float
    low_ratio: float
    high_ratio: float
    samples: int

    def predict(self, input_seconds: float | None) -> float:
        slope = self.seconds_per_input_second
        if slope is None or input_seconds is None:
            return self.median_s
        return max(MIN_RUN_S, self.intercept_s + slope * input_seconds)


@dataclass(frozen=True)
class RunTimeModel:
    kinds: dict[ExportKind, KindModel]

    @classmethod
    def fit(cls, runs: Sequence[FinishedRun]) -> RunTimeModel:
        by_kind: dict[ExportKind, list[FinishedRun]] = {}
        for run in runs:
            by_kind.setdefault(run.kind, []).append(run)
        return cls(
            {
                kind: _fit_kind(kind_runs)
                for kind, kind_runs in by_kind.items()
                if len(kind_runs) >= MIN_SAMPLES
            }
        )

    def predict(self, kind: ExportKind, input_seconds: float | None) -> float | None:
        model = self.kinds.get(kind)
        return None if model is None else model.predict(input_seconds)

    def spread(self, kind: ExportKind) -> tuple[float, float]:
        model = self.kinds.get(kind)
        return (1.0, 1.0) if model is None else (model.low_ratio, model.high_ratio)


def _fit_kind(runs: list[FinishedRun]) -> KindModel:
    # A run RunPod timed at 0 ms (a stand-in, a cached answer) would divide by zero.
    times = [max(MIN_RUN_S, run.run_s) for run in runs]
    median = statistics.median(times)
    known = [
        (run.input_seconds, time)
        for run, time in zip(runs, times, strict=True)
        if run.input_seconds is not None
    ]
    xs = [x for x, _ in known]
    # Three lengths at least: with two, a length seen once decides the line alone
    # (its leverage is 1) and its held-out error is undefined.
    if len(known) >= MIN_FIT_SAMPLES and len(set(xs)) >= 3:
        intercept, slope, ratios = _line_with_held_out_ratios(known)
    else:
        intercept, slope = median, None
        # Held out, the median barely moves: each run against the median of the others.
        ratios = [
            time / statistics.median(times[:index] + times[index + 1 :])
            for index, time in enumerate(times)
        ]
    low, high = _quantile(ratios, LOW_QUANTILE), _quantile(ratios, HIGH_QUANTILE)
    return KindModel(
        intercept_s=intercept,
        seconds_per_input_second=slope,
        median_s=median,
        low_ratio=min(low, 1.0),
        high_ratio=max(high, 1.0),
        samples=len(runs),
    )


def _line_with_held_out_ratios(
    points: list[tuple[float, float]],
) -> tuple[float, float, list[float]]:
    """Least squares y = a + b * x, and each y over its prediction with the point held
    out (the residual over 1 - its leverage: no refit needed)."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sxx
    intercept = mean_y - slope * mean_x
    ratios = []
    for x, y in points:
        leverage = 1 / n + (x - mean_x) ** 2 / sxx
        if leverage > 1 - 1e-9:  # the line cannot be drawn without this point
            continue
        residual = y - (intercept + slope * x)
        held_out = max(MIN_RUN_S, y - residual / (1 - leverage))
        ratios.append(y / held_out)
    return intercept, slope, ratios


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


@dataclass(frozen=True, kw_only=True)
class Estimate:
    starts_at: datetime | None
    """None once it runs."""
    completes_at: datetime
    completes_at_low: datetime
    completes_at_high: datetime
    basis: EtaBasis

    def moved_from(self, published: Estimate, now: datetime) -> bool:
        """Worth telling subscribers: the end moved by more than 10 % of the time
        left, or by more than 5 s, or the estimate changed its basis. Estimates are
        remade once a second at most, so a drifting one sends a frame a second at
        most, and a long wait one every 5 s of drift."""
        left = max(0.0, (published.completes_at - now).total_seconds())
        shift = abs((self.completes_at - published.completes_at).total_seconds())
        return self.basis is not published.basis or shift > min(0.1 * left, 5.0)


Phase = str
"""`waiting` or `running`: estimates of a phase are off by similar amounts."""
MIN_RECORDED_ERRORS = 20
RECORDED_ERRORS = 500


class EstimateRecord:
    """Past estimates against what happened: the spread of their errors."""

    def __init__(self) -> None:
        self._open: dict[str, list[tuple[datetime, datetime, Phase]]] = {}
        # Time really left over time estimated left, per phase.
        self._ratios: dict[Phase, deque[float]] = {}

    def published(self, job_id: str, estimate: Estimate, now: datetime, phase: Phase) -> None:
        self._open.setdefault(job_id, []).append((now, estimate.completes_at, phase))

    def finished(self, job_id: str, at: datetime | None) -> None:
        """The job ended (`at`, when it completed; None: it did not complete)."""
        entries = self._open.pop(job_id, [])
        if at is None:
            return
        for published_at, estimated, phase in entries:
            said = (estimated - published_at).total_seconds()
            took = (at - published_at).total_seconds()
            if said > 0 and took > 0:
                ratios = self._ratios.setdefault(phase, deque(maxlen=RECORDED_ERRORS))
                ratios.append(took / said)

    def calibrated(self, estimate: Estimate, now: datetime, phase: Phase) -> Estimate:
        ratios = self._ratios.get(phase)
        if ratios is None or len(ratios) < MIN_RECORDED_ERRORS:
            return estimate
        values = list(ratios)
        low, high = _quantile(values, LOW_QUANTILE), _quantile(values, HIGH_QUANTILE)
        left = max(0.0, (estimate.completes_at - now).total_seconds())
        return dataclasses.replace(
            estimate,
            completes_at_low=now + timedelta(seconds=left * min(low, 1.0)),
            completes_at_high=now + timedelta(seconds=left * max(high, 1.0)),
        )

    def forget(self, job_ids: set[str]) -> None:
        """Jobs that ended without completing: their estimates say nothing."""
        for job_id in job_ids:
            self._open.pop(job_id, None)


@dataclass(frozen=True, kw_only=True)
class Running:
    kind: ExportKind
    input_seconds: float | None
    elapsed_s: float
    progress: int
    progress_elapsed_s: float | None = None
    """How long it had run when `progress` was reached (`elapsed_s` when unknown)."""


@dataclass(frozen=True, kw_only=True)
class Waiting:
    job_id: str
    kind: ExportKind
    input_seconds: float | None


def remaining_while_running(
    model: RunTimeModel, job: Running
) -> tuple[float, EtaBasis, tuple[float, float]] | None:
    """Seconds left, what they rest on, and the spread to apply to them."""
    predicted = model.predict(job.kind, job.input_seconds)
    by_history = None if predicted is None else max(MIN_LEFT_S, predicted - job.elapsed_s)
    by_rate = None
    seen_at = job.elapsed_s if job.progress_elapsed_s is None else job.progress_elapsed_s
    if 0 < job.progress < 100 and seen_at > 0:
        # Its progress as seen then, not as if it had stood still since.
        by_rate = max(MIN_LEFT_S, seen_at * 100 / job.progress - job.elapsed_s)
    spread = model.spread(job.kind)
    if by_history is not None and by_rate is not None:
        weight = math.sqrt(job.progress / 100)
        return weight * by_rate + (1 - weight) * by_history, EtaBasis.BLENDED, spread
    if by_history is not None:
        return by_history, EtaBasis.HISTORY, spread
    if by_rate is not None:
        return by_rate, EtaBasis.PROGRESS_RATE, (1.0, 1.0)
    return None


def queue_estimates(
    model: RunTimeModel,
    now: datetime,
    *,
    running: Sequence[Running],
    waiting: Sequence[Waiting],
    idle_workers: int = 0,
    busy_elsewhere: int = 0,
) -> dict[str, Estimate]:
    """Start and end of each waiting export (in queue order), as far as the model goes.

    The workers are those running our exports, `idle_workers`, and `busy_elsewhere`
    (RunPod's running workers beyond ours: other clients' jobs, about half a run
    from done); one at least."""
    if not model.kinds:
        return {}
    fallback = statistics.median(kind.median_s for kind in model.kinds.values())
    free_at: list[float] = []
    for busy in running:
        remaining = remaining_while_running(model, busy)
        free_at.append(remaining[0] if remaining is not None else fallback / 2)
    free_at += [fallback / 2] * busy_elsewhere + [0.0] * idle_workers
    if not free_at:
        free_at = [0.0]
    heapq.heapify(free_at)
    estimates: dict[str, Estimate] = {}
    for job in waiting:
        predicted = model.predict(job.kind, job.input_seconds)
        run_s = predicted if predicted is not None else fallback
        start = heapq.heappop(free_at)
        heapq.heappush(free_at, start + run_s)
        if predicted is None:
            continue
        low, high = model.spread(job.kind)
        until_done = start + run_s
        estimates[job.job_id] = Estimate(
            starts_at=now + timedelta(seconds=start),
            completes_at=now + timedelta(seconds=until_done),
            completes_at_low=now + timedelta(seconds=until_done * low),
            completes_at_high=now + timedelta(seconds=until_done * high),
            basis=EtaBasis.HISTORY,
        )
    return estimates


def running_estimate(model: RunTimeModel, now: datetime, job: Running) -> Estimate | None:
    left = remaining_while_running(model, job)
    if left is None:
        return None
    seconds, basis, (low, high) = left
    return Estimate(
        starts_at=None,
        completes_at=now + timedelta(seconds=seconds),
        completes_at_low=now + timedelta(seconds=seconds * low),
        completes_at_high=now + timedelta(seconds=seconds * high),
        basis=basis,
    )
