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

from clients.runpod import RunPodClient, RunPodRejected, RunPodUnavailable
from gql.jobs.models import ExportJob
from gql.jobs.repository import JobRepository
from gql.jobs.transitions import JobTransitions
from gql.tracking.circuit import CIRCUIT_MAX_S, EndpointCircuit, backoff
from gql.tracking.duplicates import settle_duplicates
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
        transitions: JobTransitions,
        runpod: RunPodClient | None,
        *,
        poll_interval_s: float,
        webhook_base_url: str | None = None,
        max_concurrency: int = 50,
        circuit: EndpointCircuit | None = None,
    ) -> None:
        self._repo = repo
        self._interval = poll_interval_s
        self._wake_grid_s = grid_for(poll_interval_s)
        self._steps = (
            None
            if runpod is None
            else RunPodSteps(
                runpod,
                transitions,
                poll_interval_s=poll_interval_s,
                webhook_base_url=webhook_base_url,
                max_concurrency=max_concurrency,
                circuit=circuit or EndpointCircuit(base_s=poll_interval_s, cap_s=CIRCUIT_MAX_S),
            )
        )
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

    async def stop(self) -> None:
        """Let every follower finish its step (for a while), then stop the rest."""
        self._started = False
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
        follower.alarm.ring()
        return True

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
                    job = await steps.poll(job)
                    # One poll per interval, however long this one took.
                    elapsed = asyncio.get_running_loop().time() - polled_at
                    delay = max(0.0, self._interval - elapsed)
                failures = 0
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

    __slots__ = ("alarm", "job", "letting_go", "reported_runs", "stale", "task")

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

    @property
    def done(self) -> bool:
        """Nothing left to do: the job is final, owes RunPod no cancel, and no
        other run of it is waiting to be settled."""
        job = self.job
        return (
            job.is_terminal and not job.cancel_pending and not self.reported_runs and not self.stale
        )
