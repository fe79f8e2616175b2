"""RunPod's `/health`, read once per period for the whole cluster, and what it tells.

Every `period_s` each process tries to claim the reading (`runpod_health`, one
row): the one that does asks RunPod and stores the answer; the others read it.
So RunPod sees one `/health` per period however many processes run.

The figures say how many jobs RunPod has queued and running and how many
workers are idle. No queued job can start while no worker is free, so queued
jobs need not be polled then (`may_start`): they can start once a reading shows
an idle worker, or once a job that had a worker ends (`worker_freed`), which
every process hears of through the change feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from clients.runpod import RunPodClient, RunPodError
from gql.db.database import Database
from gql.tracking.budget import Priority

logger = logging.getLogger(__name__)

HEALTH_PERIOD_S = 3.0
# A reading older than this many periods says nothing any more.
STALE_PERIODS = 3


@dataclass(frozen=True, kw_only=True)
class EndpointFigures:
    """One `/health` answer."""

    in_queue: int
    in_progress: int
    workers_idle: int
    workers_running: int
    workers_initializing: int
    observed_at: float
    """Seconds since the epoch (the database's clock)."""

    @classmethod
    def from_health(cls, body: Mapping[str, Any], observed_at: float) -> EndpointFigures:
        jobs = body.get("jobs") if isinstance(body.get("jobs"), Mapping) else {}
        workers = body.get("workers") if isinstance(body.get("workers"), Mapping) else {}
        assert isinstance(jobs, Mapping) and isinstance(workers, Mapping)
        return cls(
            in_queue=_count(jobs.get("inQueue")),
            in_progress=_count(jobs.get("inProgress")),
            workers_idle=_count(workers.get("idle")),
            workers_running=_count(workers.get("running")),
            workers_initializing=_count(workers.get("initializing")),
            observed_at=observed_at,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "in_queue": self.in_queue,
            "in_progress": self.in_progress,
            "workers_idle": self.workers_idle,
            "workers_running": self.workers_running,
            "workers_initializing": self.workers_initializing,
        }


def _count(value: object) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


class EndpointHealth:
    def __init__(
        self,
        database: Database,
        runpod: RunPodClient,
        *,
        process_id: str,
        period_s: float = HEALTH_PERIOD_S,
    ) -> None:
        self._db = database
        self._runpod = runpod
        self._process_id = process_id
        self.period_s = period_s
        self.figures: EndpointFigures | None = None
        self.error: str | None = None
        self._read_at = 0.0  # this process's monotonic clock
        self._freed_since_reading = 0
        self._listeners: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._keep_reading(), name="runpod-health")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def on_start_possible(self, listener: Callable[[], None]) -> None:
        """Call `listener` whenever queued jobs go from unable to able to start."""
        self._listeners.append(listener)

    # --- what the figures tell ---

    @property
    def fresh(self) -> bool:
        return (
            self.figures is not None
            and time.monotonic() - self._read_at < STALE_PERIODS * self.period_s
        )

    def may_start(self) -> bool:
        """Whether a queued job can have started: unknown counts as yes."""
        figures = self.figures
        if figures is None or not self.fresh:
            return True
        if figures.workers_idle > 0 or figures.in_queue == 0:
            return True
        return self._freed_since_reading > 0

    def worker_freed(self) -> None:
        """A job that had a worker ended: RunPod gives the worker the next queued job."""
        could = self.may_start()
        self._freed_since_reading += 1
        if not could:
            self._notify()

    def health(self) -> dict[str, Any]:
        figures = self.figures
        return {
            "ok": self.error is None,
            "configured": True,
            **({"error": self.error} if self.error else {}),
            **(figures.as_dict() if figures is not None else {}),
            "age_s": round(time.monotonic() - self._read_at, 1) if figures else None,
            "queued_jobs_may_start": self.may_start(),
        }

    # --- reading ---

    async def _keep_reading(self) -> None:
        while True:
            try:
                await self.read_once()
            except Exception as error:  # the database is away: try again next period
                logger.warning(
                    "RunPod health reading failed",
                    extra={"action": "runpod_health_failed", "error": repr(error)},
                )
            await asyncio.sleep(self.period_s)

    async def read_once(self) -> None:
        """Ask RunPod if this process holds this period's claim; else read what was asked."""
        claimed = await self._db.fetch_one(
            "claim_health_check", process=self._process_id, period=self.period_s * 0.9
        )
        if claimed is not None:
            await self._ask_runpod()
        row = await self._db.fetch_one("latest_health")
        if row is None or row["observed_at"] is None:
            return
        self.error = row["error"]
        if row["body"] is None:
            return
        observed_at = float(row["observed_at"])
        if self.figures is not None and observed_at <= self.figures.observed_at:
            return
        could = self.may_start()
        self.figures = EndpointFigures.from_health(json.loads(row["body"]), observed_at)
        self._read_at = time.monotonic() - max(0.0, float(row["now"]) - observed_at)
        self._freed_since_reading = 0
        if not could and self.may_start():
            self._notify()

    async def _ask_runpod(self) -> None:
        try:
            body = await self._runpod.health(priority=Priority.URGENT)
        except RunPodError as error:
            await self._db.execute("save_health", body=None, error=str(error) or "unreachable")
            return
        await self._db.execute("save_health", body=json.dumps(body), error=None)

    def _notify(self) -> None:
        for listener in self._listeners:
            listener()
