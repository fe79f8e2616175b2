"""Follows jobs on RunPod, whether or not anyone is watching.

Which jobs this process follows is the coordinator's call (`gql.cluster`): each
job that needs following is leased to exactly one process. Here, one task per
followed job submits it (retrying with backoff while RunPod is unreachable),
then polls `/status` once per interval and writes each change through
`JobTransitions`, which fans it out. However many clients subscribe to a job,
RunPod sees one poll per interval. A webhook or a cancel wakes the task early;
a job let go stops after the step it is in, never halfway through one. Every
request passes one `EndpointCircuit`, so an outage is probed once, not per job.

Followers wake on a shared grid (`WAKE_GRID_S`): the polls due in the same slot
go out in one pass of the event loop, and their answers, writes and pushes are
handled in batches: with 300 jobs followed, the process wakes twenty times a
second for them rather than three hundred, which halves the CPU a poll costs.

A webhook also tells which RunPod job it is about. Only a `/run` for this export
carried its webhook URL, so a RunPod id other than the stored one is a second
run of the same export: a `/run` RunPod accepted but whose answer was lost (the
server died first), then submitted again. The follower settles it: whichever
run is not needed is cancelled on RunPod.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

from clients.runpod import (
    RunPodClient,
    RunPodJob,
    RunPodJobNotFound,
    RunPodRejected,
    RunPodStatus,
    RunPodUnavailable,
)
from gql.clock import utcnow
from gql.jobs.models import Change, ExportJob, ExportStatus, change_from_runpod
from gql.jobs.repository import JobRepository
from gql.jobs.transitions import JobTransitions
from gql.tracking.circuit import CIRCUIT_MAX_S, EndpointCircuit, backoff

logger = logging.getLogger(__name__)

SUBMIT_BACKOFF_MAX_S = 60.0
POLL_BACKOFF_MAX_S = 30.0
# On shutdown, followers get this long to finish the step they are in.
STOP_GRACE_S = 5.0
# Followers' wake-ups are rounded to this grid (or a tenth of the poll interval if
# finer); rounding to the nearest slot keeps one poll per interval on average.
WAKE_GRID_S = 0.05
JOB_UNKNOWN_TO_ENDPOINT = (
    "The endpoint no longer knows this job (it expired, was purged or its worker restarted); "
    "retry the export"
)


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
        self._transitions = transitions
        self._runpod = runpod
        self._interval = poll_interval_s
        self._wake_grid_s = min(WAKE_GRID_S, poll_interval_s / 10)
        self._webhook_base_url = webhook_base_url
        self._requests = asyncio.Semaphore(max_concurrency)
        self._circuit = circuit or EndpointCircuit(base_s=poll_interval_s, cap_s=CIRCUIT_MAX_S)
        self._followers: dict[str, _Follower] = {}
        self._started = False

    @property
    def running(self) -> bool:
        return self._started

    @property
    def can_follow(self) -> bool:
        """False with no RunPod endpoint configured: nothing could be followed."""
        return self._runpod is not None

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
        if self._runpod is None or not self._started:
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
        assert self._runpod is not None
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
                    job = await self._settle_duplicates(self._runpod, job, duplicates)
                    delay = 0.0
                elif job.is_terminal:
                    job = await self._send_cancel(self._runpod, job)
                    delay = 0.0
                elif job.runpod_id is None:
                    job, delay = await self._submit(self._runpod, job)
                else:
                    polled_at = asyncio.get_running_loop().time()
                    job = await self._poll(self._runpod, job)
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

    async def _submit(self, runpod: RunPodClient, job: ExportJob) -> tuple[ExportJob, float]:
        now = utcnow()
        if job.next_attempt_at is not None and job.next_attempt_at > now:
            return job, (job.next_attempt_at - now).total_seconds()
        attempts = job.attempts + 1
        wait = backoff(attempts, base=1.0, cap=SUBMIT_BACKOFF_MAX_S)
        # Counted before the call, so an attempt lost to a crash still counts.
        job = await self._transitions.apply(
            job, attempts=attempts, next_attempt_at=now + timedelta(seconds=wait)
        )
        try:
            accepted = await self._request(
                lambda: runpod.run(self._payload(job), webhook=self._webhook_url(job))
            )
        except RunPodUnavailable as error:
            logger.warning(
                "runpod submission failed; will retry",
                extra={
                    "action": "submit_retry",
                    "job": job.id,
                    "attempt": attempts,
                    "error": str(error),
                    "retry_in_s": round(wait, 2),
                },
            )
            return job, wait
        except RunPodRejected as error:
            job = await self._transitions.apply(
                job, Change(status=ExportStatus.ERROR, error=f"RunPod rejected the job: {error}")
            )
            return job, 0.0
        job = await self._transitions.apply(
            job, change_from_runpod(accepted), runpod_id=accepted.id, next_attempt_at=None
        )
        if job.status is ExportStatus.CANCELLED:
            # Cancelled while the submission was in flight: RunPod must drop it too.
            job = await self._transitions.apply(job, cancel_pending=True)
        logger.info(
            "job submitted",
            extra={"action": "submit", "job": job.id, "runpod_id": accepted.id},
        )
        return job, self._interval

    async def _poll(self, runpod: RunPodClient, job: ExportJob) -> ExportJob:
        assert job.runpod_id is not None
        runpod_id = job.runpod_id
        try:
            observed = await self._request(lambda: runpod.status(runpod_id))
        except RunPodJobNotFound:
            return await self._transitions.apply(
                job,
                Change(
                    status=ExportStatus.ERROR,
                    error=JOB_UNKNOWN_TO_ENDPOINT,
                ),
            )
        return await self._transitions.apply(job, change_from_runpod(observed))

    async def _send_cancel(self, runpod: RunPodClient, job: ExportJob) -> ExportJob:
        if job.runpod_id is not None:
            await self._cancel_on_runpod(runpod, job.runpod_id)
        return await self._transitions.apply(job, cancel_pending=False)

    async def _settle_duplicates(
        self, runpod: RunPodClient, job: ExportJob, duplicates: set[str]
    ) -> ExportJob:
        """Leave one RunPod run working for `job`; each id is dropped once settled."""
        for duplicate in sorted(duplicates):
            if duplicate != job.runpod_id:
                job = await self._settle_duplicate(runpod, job, duplicate)
            duplicates.discard(duplicate)
        return job

    async def _settle_duplicate(
        self, runpod: RunPodClient, job: ExportJob, duplicate: str
    ) -> ExportJob:
        extra = {"job": job.id, "runpod_id": job.runpod_id, "duplicate": duplicate}
        logger.warning(
            "webhook from another RunPod job of this export",
            extra={"action": "duplicate_detected", **extra},
        )
        try:
            observed = await self._request(lambda: runpod.status(duplicate))
        except RunPodJobNotFound:
            logger.warning(
                "duplicate RunPod job is unknown to the endpoint",
                extra={"action": "duplicate_unknown", **extra},
            )
            return job
        usable = observed.status in (RunPodStatus.IN_QUEUE, RunPodStatus.IN_PROGRESS)
        if job.runpod_id is None and not job.is_terminal and (usable or _completed(observed)):
            # A `/run` whose answer was lost: follow that run rather than submit again.
            job = await self._transitions.apply(
                job, change_from_runpod(observed), runpod_id=duplicate, next_attempt_at=None
            )
            if job.status is ExportStatus.CANCELLED:
                # Cancelled meanwhile, while no run was known: RunPod must drop this one.
                job = await self._transitions.apply(job, cancel_pending=True)
            logger.warning(
                "following a RunPod job whose submission answer was lost",
                extra={"action": "lost_run_adopted", **extra},
            )
            return job
        if usable:
            await self._cancel_on_runpod(runpod, duplicate)
            logger.warning(
                "cancelled a duplicate RunPod job",
                extra={"action": "duplicate_cancelled", **extra},
            )
            return job
        if _completed(observed) and not job.is_terminal:
            # It finished first, on the same input and output key: its result is this
            # export's, and the run being followed is the one left to stop.
            superseded = job.runpod_id
            job = await self._transitions.apply(
                job, change_from_runpod(observed), runpod_id=duplicate
            )
            if superseded is not None:
                await self._cancel_on_runpod(runpod, superseded)
            logger.warning(
                "a duplicate RunPod job finished first; took its result, cancelled the other",
                extra={"action": "duplicate_adopted", **extra},
            )
            return job
        logger.warning(
            "duplicate RunPod job had already ended",
            extra={"action": "duplicate_ended", "status": observed.status.value, **extra},
        )
        return job

    async def _cancel_on_runpod(self, runpod: RunPodClient, runpod_id: str) -> None:
        with contextlib.suppress(RunPodJobNotFound):
            await self._request(lambda: runpod.cancel(runpod_id))

    async def _request(self, call: Callable[[], Awaitable[RunPodJob]]) -> RunPodJob:
        async with self._circuit.admitted(), self._requests:
            return await call()

    def _payload(self, job: ExportJob) -> dict[str, object]:
        return {
            "job_id": job.id,
            "user_id": job.user_id,
            "type": job.kind.value,
            "input_key": job.input_key,
            "output_key": job.output_key,
            "params": dict(job.params),
        }

    def _webhook_url(self, job: ExportJob) -> str | None:
        if self._webhook_base_url is None:
            return None
        return f"{self._webhook_base_url}?job={job.id}&token={job.webhook_token}"


def _completed(observed: RunPodJob) -> bool:
    return observed.status is RunPodStatus.COMPLETED


def reported_run(job: ExportJob, body: Mapping[str, Any]) -> str | None:
    """The RunPod id a webhook body names, unless its input says it is another job's.

    The body is only a hint: a job's state is read from `/status`, never from it."""
    runpod_id, job_input = body.get("id"), body.get("input")
    if isinstance(job_input, Mapping) and job_input.get("job_id") != job.id:
        return None
    return runpod_id if isinstance(runpod_id, str) and runpod_id else None


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


class Alarm:
    """A follower's sleep until its next step: it ends after a delay, at the
    nearest point of the wake-up grid, or at once when rung (a webhook, a cancel).
    One timer and one future per sleep, and no task: with a thousand jobs
    followed this runs a thousand times a second."""

    __slots__ = ("_grid_s", "_rung", "_waiter")

    def __init__(self, grid_s: float) -> None:
        self._grid_s = grid_s
        self._rung = False
        self._waiter: asyncio.Future[None] | None = None

    def ring(self) -> None:
        self._rung = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def sleep(self, delay: float) -> bool:
        """Sleep `delay` seconds; True if rung meanwhile (or before)."""
        if not self._rung and delay > 0:
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            timer = loop.call_at(on_grid(loop.time() + delay, self._grid_s), _end_sleep, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        rung, self._rung = self._rung, False
        return rung


def on_grid(moment: float, grid_s: float) -> float:
    """The point of the wake-up grid nearest to `moment` (loop time, seconds).

    Nearest, not next: a poll that wakes a little late is due again one interval
    later, which rounds back onto its slot, so the period does not creep up."""
    return round(moment / grid_s) * grid_s


def _end_sleep(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
