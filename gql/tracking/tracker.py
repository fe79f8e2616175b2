"""Follows jobs on RunPod, whether or not anyone is watching: one task per job.

Which jobs this process follows is the coordinator's call (`gql.cluster`). A
follower submits its job, then polls it once per interval (`steps`), writing
each change through `JobTransitions`; however many clients subscribe, RunPod
sees one poll per interval. A webhook or a cancel wakes it early; a job let go
stops after the step it is in, never halfway through one. See the README,
"How jobs are followed".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from clients.runpod import RunPodRejected, RunPodThrottled, RunPodUnavailable
from gql.jobs.models import ExportJob
from gql.jobs.repository import JobRepository
from gql.observability import metrics
from gql.tracking.budget import RequestBudget
from gql.tracking.circuit import backoff
from gql.tracking.duplicates import settle_duplicates
from gql.tracking.endpoint_health import EndpointHealth
from gql.tracking.schedule import PollSchedule
from gql.tracking.steps import RunPodSteps
from gql.tracking.wake_grid import Alarm, grid_for

logger = logging.getLogger(__name__)

POLL_BACKOFF_MAX_S = 30.0
# On shutdown, followers get this long to finish the step they are in.
STOP_GRACE_S = 5.0


class JobTracker:
    def __init__(
        self,
        repo: JobRepository,
        steps: RunPodSteps | None,
        *,
        schedule: PollSchedule,
        budget: RequestBudget | None = None,
        health: EndpointHealth | None = None,
    ) -> None:
        """`steps` is None when no RunPod endpoint is configured: nothing is followed."""
        self._repo = repo
        self._steps = steps
        self.schedule = schedule
        self.budget = budget
        self.health = health
        if health is not None:
            health.on_start_possible(self.start_possible)
        self._interval = schedule.interval_s
        self._wake_grid_s = grid_for(schedule.interval_s)
        self._followers: dict[str, _Follower] = {}
        self._started = False

    @property
    def running(self) -> bool:
        return self._started

    @property
    def can_follow(self) -> bool:
        """False with no RunPod endpoint configured: nothing could be followed."""
        return self._steps is not None

    @property
    def followed_count(self) -> int:
        return len(self._followers)

    @property
    def watched_count(self) -> int:
        """Followed jobs someone watches."""
        is_watched = self.schedule.is_watched
        return sum(1 for follower in self._followers.values() if is_watched(follower.job))

    def follows(self, job_id: str) -> bool:
        follower = self._followers.get(job_id)
        return follower is not None and not follower.letting_go

    def followed_ids(self) -> set[str]:
        return {job_id for job_id, follower in self._followers.items() if not follower.letting_go}

    def known_job(self, job_id: str) -> ExportJob | None:
        """The job as its follower here last wrote or read it; None if not followed here."""
        follower = self._followers.get(job_id)
        return None if follower is None else follower.job

    async def start(self) -> None:
        self._started = True
        if self.health is not None:
            await self.health.start()

    async def stop(self) -> None:
        """Let every follower finish its step (for a while), then stop the rest."""
        self._started = False
        if self.health is not None:
            await self.health.stop()
        tasks = [task for job_id in list(self._followers) if (task := self.let_go(job_id))]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=STOP_GRACE_S)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self._followers.clear()

    def follow(self, job: ExportJob, *, delay: float = 0.0) -> None:
        """Start following `job` (no-op, apart from a wake-up, if already followed)."""
        if self._steps is None or not self._started:
            return
        follower = self._followers.get(job.id)
        if follower is not None and not follower.task.done():
            follower.letting_go = False
            self.look_now(job.id)
            return
        follower = _Follower(job, Alarm(self._wake_grid_s))
        follower.task = asyncio.create_task(self._follow(follower, delay), name=f"follow-{job.id}")
        self._followers[job.id] = follower
        follower.task.add_done_callback(lambda _: self._forget(follower))

    def look_now(
        self, job_id: str, reported_run: str | None = None, *, changed: bool = True
    ) -> bool:
        """Have the job's follower ask RunPod now (webhooks, cancels).

        `changed` says the job's row may have changed elsewhere (a cancel, another
        process's write), so the follower reads it again first; a webhook changes
        nothing stored. `reported_run` is the RunPod job a webhook named: when it is
        not the run being followed, it is another run of this export, which the
        follower settles. Returns False when the job is not followed here.
        """
        follower = self._followers.get(job_id)
        if follower is None or follower.letting_go:
            return False
        if reported_run is not None:
            follower.reported_runs.add(reported_run)
        follower.stale = follower.stale or changed
        follower.urgent = True
        follower.alarm.ring()
        return True

    def watched_now(self, *, job_id: str | None = None, user_id: str | None = None) -> None:
        """A first subscriber arrived for a job, or for all of a user's jobs: their
        followers here ask RunPod at once, at the head of the line."""
        if job_id is not None:
            self.look_now(job_id, changed=False)
        if user_id is not None:
            for follower in list(self._followers.values()):
                if follower.job.user_id == user_id:
                    self.look_now(follower.job.id, changed=False)

    def set_budget_share(self, share: float) -> None:
        """This process's fraction of the cluster's RunPod budget."""
        if self.budget is not None:
            self.budget.set_share(share)

    def worker_freed(self) -> None:
        """A job that had a RunPod worker ended, here or elsewhere."""
        if self.health is not None:
            self.health.worker_freed()

    def endpoint_gauges(self) -> dict[Any, Callable[[], float]]:
        """The endpoint's figures as RunPod's /health last gave them, for `/metrics`."""
        health = self.health
        if health is None:
            return {}

        def figure(name: str) -> Callable[[], float]:
            return lambda: getattr(health.figures, name, 0) if health.figures else 0

        return {
            metrics.RUNPOD_ENDPOINT_JOBS.labels("in_queue"): figure("in_queue"),
            metrics.RUNPOD_ENDPOINT_JOBS.labels("in_progress"): figure("in_progress"),
            metrics.RUNPOD_ENDPOINT_WORKERS.labels("idle"): figure("workers_idle"),
            metrics.RUNPOD_ENDPOINT_WORKERS.labels("running"): figure("workers_running"),
            metrics.RUNPOD_ENDPOINT_WORKERS.labels("initializing"): figure("workers_initializing"),
        }

    def start_possible(self) -> None:
        """Queued jobs can start again: watched ones waiting for a worker look now."""
        for follower in list(self._followers.values()):
            if follower.gated and self.schedule.is_watched(follower.job):
                follower.alarm.ring()

    def let_go(self, job_id: str) -> asyncio.Task[None] | None:
        """Stop following the job once its current step is done; returns the task
        to await (None when it was not followed)."""
        follower = self._followers.get(job_id)
        if follower is None:
            return None
        follower.letting_go = True
        follower.alarm.ring()
        return follower.task

    def _forget(self, follower: _Follower) -> None:
        job_id = follower.job.id
        if self._followers.get(job_id) is follower:
            del self._followers[job_id]
        task = follower.task
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "job follower crashed",
                exc_info=task.exception(),
                extra={"action": "follow_crash", "job": job_id},
            )

    async def _follow(self, follower: _Follower, delay: float) -> None:
        steps = self._steps
        assert steps is not None
        failures = 0
        while True:
            await follower.alarm.sleep(delay)
            if follower.letting_go:
                return
            if follower.stale:
                follower.stale = False
                follower.job = await self._repo.get(follower.job.id) or follower.job
            if follower.done:
                return
            job = follower.job
            duplicates = follower.reported_runs
            try:
                if duplicates:
                    job = await settle_duplicates(steps, job, duplicates)
                    delay = 0.0
                elif job.is_terminal:
                    job = await steps.send_cancel(job)
                    delay = 0.0
                elif job.runpod_id is None:
                    job, delay = await steps.submit(job)
                else:
                    polled_at = asyncio.get_running_loop().time()
                    priority = self.schedule.priority(job, rung=follower.urgent)
                    follower.urgent = False
                    job = await steps.poll(job, priority)
                    # One poll per interval, however long this one took (waiting
                    # for the budget included).
                    elapsed = asyncio.get_running_loop().time() - polled_at
                    interval, follower.gated = self.schedule.next_poll_in(job)
                    delay = max(0.0, interval - elapsed)
                failures = 0
            except RunPodThrottled:
                # RunPod's limit: the budget has slowed the route down and paces
                # the retry, which goes back in line at once.
                follower.urgent = True
                delay = 0.0
            except (RunPodUnavailable, RunPodRejected) as error:
                failures += 1
                delay = backoff(failures, base=self._interval, cap=POLL_BACKOFF_MAX_S)
                logger.warning(
                    "runpod request failed; backing off",
                    extra={
                        "action": "runpod_backoff",
                        "job": job.id,
                        "error": str(error),
                        "retry_in_s": round(delay, 2),
                    },
                )
            follower.job = job
            # Ended at once, not an interval later: until then the coordinator
            # counts the job among those it follows.
            if follower.done:
                return


class _Follower:
    """One followed job: its latest known state, and what its task is asked to do."""

    __slots__ = ("alarm", "gated", "job", "letting_go", "reported_runs", "stale", "task", "urgent")

    def __init__(self, job: ExportJob, alarm: Alarm) -> None:
        self.job = job
        self.task: asyncio.Task[None]
        self.alarm = alarm
        # RunPod ids webhooks named for this job: maybe other runs of it.
        self.reported_runs: set[str] = set()
        # Stop after the current step.
        self.letting_go = False
        # The row changed elsewhere: read it again before the next step.
        self.stale = False
        # Someone waits on the next poll (a webhook, a first subscriber): first in line.
        self.urgent = False
        # Queued, sleeping until a worker frees.
        self.gated = False

    @property
    def done(self) -> bool:
        """Nothing left to do: the job is final, owes RunPod no cancel, and no
        other run of it is waiting to be settled."""
        job = self.job
        return (
            job.is_terminal and not job.cancel_pending and not self.reported_runs and not self.stale
        )
