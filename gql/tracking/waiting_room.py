"""Where each waiting export stands, and when each unfinished one should finish.

Every `refresh_s` each process reads the unfinished jobs from the database in
submission order (RunPod takes its queue first in, first out, and `/run`s go
out in that order) and, every `refit_s`, the newest finished runs; with the
workers RunPod's `/health` last reported it computes, for every job:

- its queue position: 1 + the exports of the endpoint waiting ahead of it
  (`PENDING` or `QUEUED`), whoever started them; all processes read the same
  rows, so they agree;
- whether that is a lower bound: RunPod counts more queued jobs than ours
  (other clients share the endpoint);
- its estimate (`gql.jobs.eta`), published again only when it moves by more
  than 10 % of the time left or 5 s, so a drifting estimate causes no storm.

Jobs whose position or published estimate moved are nudged to this process's
subscribers (`JobBroker.nudge`), which send a frame only if a field they
selected changed.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from gql.clock import utcnow
from gql.jobs.broker import JobBroker
from gql.jobs.eta import (
    Estimate,
    EstimateRecord,
    Running,
    RunTimeModel,
    Waiting,
    queue_estimates,
)
from gql.jobs.eta import running_estimate as estimate_running
from gql.jobs.models import ExportJob, ExportStatus
from gql.jobs.repository import JobRepository, LineEntry
from gql.tracking.endpoint_health import EndpointFigures

logger = logging.getLogger(__name__)

REFRESH_S = 1.0
REFIT_S = 30.0
HISTORY_RUNS = 500
# Below this many finished runs the model is refitted at every refresh: a new
# service learns from its first exports at once.
YOUNG_HISTORY = 50
WAITING = frozenset({ExportStatus.PENDING, ExportStatus.QUEUED})


@dataclass(frozen=True, kw_only=True)
class Place:
    """A job's place in line and estimate, as subscribers and queries see them."""

    position: int | None
    lower_bound: bool
    eta: Estimate | None


class WaitingRoom:
    def __init__(
        self,
        repo: JobRepository,
        broker: JobBroker,
        *,
        figures: Callable[[], EndpointFigures | None],
        known_job: Callable[[str], ExportJob | None],
        poll_interval_s: float = 1.0,
        refresh_s: float = REFRESH_S,
        refit_s: float = REFIT_S,
    ) -> None:
        """`poll_interval_s`: progress is seen up to a poll after it was reached."""
        self._repo = repo
        self._broker = broker
        self._figures = figures
        self._known_job = known_job
        self._progress_lag_s = poll_interval_s / 2
        self._refresh_s = refresh_s
        self._refit_s = refit_s
        self._model = RunTimeModel({})
        self._fitted_at: float | None = None
        # The line as last read: waiting jobs' (created_at, id) in order.
        self._line: list[tuple[datetime, str]] = []
        # Jobs recorded here since the line was read: behind it, in their order.
        self._joined: list[tuple[datetime, str]] = []
        # When each of them was recorded (monotonic): one recorded before a reading
        # began and absent from it has already left the line.
        self._joined_at: dict[str, float] = {}
        self._positions: dict[str, int] = {}
        self._published: dict[str, Estimate] = {}
        self._record = EstimateRecord()
        self._lower_bound = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._keep_refreshing(), name="waiting-room")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def place(self, job: ExportJob) -> Place:
        """Synchronous, from memory: the job's position and its published estimate."""
        if job.status.is_terminal:
            return Place(position=None, lower_bound=False, eta=None)
        position = None
        if job.status in WAITING:
            position = self._positions.get(job.id)
            if position is None:  # newer than the last reading: behind all of it
                key = (job.created_at, job.id)
                ahead = bisect.bisect_left(self._line, key)
                position = ahead + bisect.bisect_left(self._joined, key) + 1
        return Place(
            position=position,
            lower_bound=position is not None and self._lower_bound,
            eta=self._published.get(job.id),
        )

    def joined(self, job: ExportJob) -> None:
        """A job was just recorded here: it stands behind the line until it is read."""
        bisect.insort(self._joined, (job.created_at, job.id))
        self._joined_at[job.id] = time.monotonic()

    # --- refreshing ---

    async def _keep_refreshing(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception as error:  # the database is away: the next turn catches up
                logger.warning(
                    "waiting room refresh failed",
                    extra={"action": "waiting_room_failed", "error": repr(error)},
                )
            await asyncio.sleep(self._refresh_s)

    async def refresh(self) -> None:
        loop_now = asyncio.get_running_loop().time()
        young = sum(kind.samples for kind in self._model.kinds.values()) < YOUNG_HISTORY
        if young or self._fitted_at is None or loop_now - self._fitted_at >= self._refit_s:
            await self._refit()
            self._fitted_at = loop_now
        read_from = time.monotonic()
        entries = await self._repo.unfinished_line()
        await self._settle(set(self._published) - {entry.id for entry in entries})
        self._forget_joined({entry.id for entry in entries}, read_from)
        moved = self._place_all(entries, utcnow())
        await self._nudge(moved, entries)

    async def _refit(self) -> None:
        runs = await self._repo.finished_runs(HISTORY_RUNS)
        try:
            self._model = RunTimeModel.fit(runs)
        except ArithmeticError as error:  # keep the last model: the line must still move
            fields = {"action": "eta_fit_failed", "error": repr(error)}
            logger.warning("run-time model fit failed", extra=fields)

    def _forget_joined(self, known: set[str], read_from: float) -> None:
        """Joined jobs now in the line, or recorded before it was read and not in it."""
        self._joined = [
            (created_at, job_id)
            for created_at, job_id in self._joined
            if job_id not in known and self._joined_at.get(job_id, 0.0) >= read_from
        ]
        self._joined_at = {job_id: self._joined_at[job_id] for _, job_id in self._joined}

    async def _settle(self, ended: set[str]) -> None:
        """Jobs estimated here that have ended: how far their estimates were off."""
        if not ended:
            return
        for job in await self._repo.get_many(sorted(ended)):
            completed = job.status is ExportStatus.COMPLETE
            self._record.finished(job.id, job.completed_at if completed else None)
        self._record.forget(ended)

    def _place_all(self, entries: list[LineEntry], now: datetime) -> set[str]:
        """Recompute every position and estimate; the ids whose view moved."""
        waiting = [entry for entry in entries if entry.status in WAITING]
        running = [entry for entry in entries if entry.status is ExportStatus.PROCESSING]
        positions = {entry.id: index + 1 for index, entry in enumerate(waiting)}
        moved = {job for job, place in positions.items() if self._positions.get(job) != place}
        self._positions = positions
        self._line = [(entry.created_at, entry.id) for entry in waiting]
        figures = self._figures()
        queued_here = sum(1 for entry in waiting if entry.status is ExportStatus.QUEUED)
        self._lower_bound = figures is not None and figures.in_queue > queued_here
        estimates = self._estimates(now, waiting, running, figures)
        published: dict[str, Estimate] = {}
        for entry in entries:
            estimate = estimates.get(entry.id)
            previous = self._published.get(entry.id)
            if estimate is None:
                if previous is not None:
                    moved.add(entry.id)
                continue
            if previous is None or estimate.moved_from(previous, now):
                phase = "waiting" if entry.status in WAITING else "running"
                estimate = self._record.calibrated(estimate, now, phase)
                published[entry.id] = estimate
                self._record.published(entry.id, estimate, now, phase)
                moved.add(entry.id)
            else:
                published[entry.id] = previous
        self._published = published
        return moved

    def _estimates(
        self,
        now: datetime,
        waiting: list[LineEntry],
        running: list[LineEntry],
        figures: EndpointFigures | None,
    ) -> dict[str, Estimate]:
        model = self._model
        busy = [
            Running(
                kind=entry.kind,
                input_seconds=entry.input_seconds,
                elapsed_s=_seconds(now - (entry.started_at or now)),
                progress=entry.progress,
                # The row was last written when its progress was seen, on average
                # half a poll after the worker reached it.
                progress_elapsed_s=_seconds(
                    entry.updated_at
                    - (entry.started_at or now)
                    - timedelta(seconds=self._progress_lag_s)
                ),
            )
            for entry in running
        ]
        estimates = queue_estimates(
            model,
            now,
            running=busy,
            waiting=[
                Waiting(job_id=entry.id, kind=entry.kind, input_seconds=entry.input_seconds)
                for entry in waiting
            ],
            idle_workers=figures.workers_idle if figures is not None else 0,
            busy_elsewhere=(
                max(0, figures.workers_running - len(running)) if figures is not None else 0
            ),
        )
        for entry, job in zip(running, busy, strict=True):
            estimate = estimate_running(model, now, job)
            if estimate is not None:
                estimates[entry.id] = estimate
        return estimates

    async def _nudge(self, moved: set[str], entries: Iterable[LineEntry]) -> None:
        """Subscribers here see the jobs whose view moved again (those they watch)."""
        elsewhere: list[str] = []
        for entry in entries:
            if entry.id not in moved or not self._broker.watches(entry.id, entry.user_id):
                continue
            job = self._known_job(entry.id)
            if job is not None:
                self._broker.nudge(job)
            else:  # followed by another process: read it
                elsewhere.append(entry.id)
        for job in await self._repo.get_many(elsewhere) if elsewhere else []:
            self._broker.nudge(job)


def _seconds(span: timedelta) -> float:
    return max(0.0, span.total_seconds())
