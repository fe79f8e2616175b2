"""Follows every unfinished job on RunPod, whether or not anyone is watching.

One task per job submits it (retrying with backoff while RunPod is unreachable),
then polls `/status` once per interval and writes each change through
`JobTransitions`, which fans it out. However many clients subscribe to a job,
RunPod sees one poll per interval. A webhook or a cancel wakes the task early.
On start-up every unfinished job in the database is followed again. Every
request passes one `EndpointCircuit`, so an outage is probed once, not per job.

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
import random
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
from gql.jobs.circuit import CIRCUIT_MAX_S, EndpointCircuit, backoff
from gql.jobs.models import Change, ExportJob, ExportStatus, change_from_runpod, utcnow
from gql.jobs.repository import JobRepository
from gql.jobs.transitions import JobTransitions

logger = logging.getLogger(__name__)

SUBMIT_BACKOFF_MAX_S = 60.0
POLL_BACKOFF_MAX_S = 30.0
RESUME_SPREAD_S = 2.0
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
        self._webhook_base_url = webhook_base_url
        self._requests = asyncio.Semaphore(max_concurrency)
        self._circuit = circuit or EndpointCircuit(base_s=poll_interval_s, cap_s=CIRCUIT_MAX_S)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wakeups: dict[str, asyncio.Event] = {}
        # Job id -> RunPod ids of other runs of that job, reported by webhooks.
        self._duplicates: dict[str, set[str]] = {}
        self._started = False

    @property
    def running(self) -> bool:
        return self._started

    @property
    def followed_count(self) -> int:
        return len(self._tasks)

    async def start(self) -> None:
        self._started = True
        jobs = await self._repo.jobs_to_follow()
        for job in jobs:
            # Soon (the job may have moved on while we were down), but spread out
            # rather than in one burst.
            self.follow(job, delay=random.uniform(0, min(self._interval, RESUME_SPREAD_S)))
        logger.info("tracker started", extra={"action": "tracker_start", "jobs": len(jobs)})

    async def stop(self) -> None:
        self._started = False
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._wakeups.clear()
        self._duplicates.clear()

    def follow(self, job: ExportJob, *, delay: float = 0.0) -> None:
        """Start following `job` (no-op, apart from a wake-up, if already followed)."""
        if self._runpod is None or not self._started:
            return
        if job.id in self._tasks:
            self.wake(job.id)
            return
        self._wakeups[job.id] = asyncio.Event()
        task = asyncio.create_task(self._follow(job, delay), name=f"follow-{job.id}")
        self._tasks[job.id] = task
        task.add_done_callback(lambda _: self._forget(job.id, task))

    def webhook(self, job: ExportJob, body: Mapping[str, Any]) -> None:
        """RunPod called `job`'s (authenticated) webhook with `body`: look again now.

        The body is only a hint: the state is read from `/status`, never from it.
        """
        reported = _reported_run(job, body)
        if reported is not None and reported != job.runpod_id:
            # Settled by the follower; before a run is stored this may be its own.
            self._duplicates.setdefault(job.id, set()).add(reported)
            if job.runpod_id is not None:
                logger.warning(
                    "webhook from another RunPod job of this export",
                    extra={
                        "action": "duplicate_detected",
                        "job": job.id,
                        "runpod_id": job.runpod_id,
                        "duplicate": reported,
                    },
                )
        if not self.wake(job.id):
            self.follow(job)

    def wake(self, job_id: str) -> bool:
        """Re-read the job and ask RunPod now (webhooks, cancels). False if not followed."""
        event = self._wakeups.get(job_id)
        if event is None:
            return False
        event.set()
        return True

    def _forget(self, job_id: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(job_id) is task:
            del self._tasks[job_id]
            self._wakeups.pop(job_id, None)
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "job follower crashed",
                exc_info=task.exception(),
                extra={"action": "follow_crash", "job": job_id},
            )

    async def _follow(self, job: ExportJob, delay: float) -> None:
        assert self._runpod is not None
        wakeup = self._wakeups[job.id]
        failures = 0
        while True:
            woken = await _sleep_or_wake(wakeup, delay)
            if woken:
                fresh = await self._repo.get(job.id)
                job = fresh or job
            duplicates = self._duplicates.get(job.id)
            if job.is_terminal and not job.cancel_pending and not duplicates:
                return
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
                    job = await self._poll(self._runpod, job)
                    delay = self._interval
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
        if not duplicates:
            self._duplicates.pop(job.id, None)
        return job

    async def _settle_duplicate(
        self, runpod: RunPodClient, job: ExportJob, duplicate: str
    ) -> ExportJob:
        extra = {"job": job.id, "runpod_id": job.runpod_id, "duplicate": duplicate}
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


def _reported_run(job: ExportJob, body: Mapping[str, Any]) -> str | None:
    """The RunPod id a webhook body names, unless its input says it is another job's."""
    runpod_id, job_input = body.get("id"), body.get("input")
    if isinstance(job_input, Mapping) and job_input.get("job_id") != job.id:
        return None
    return runpod_id if isinstance(runpod_id, str) and runpod_id else None


async def _sleep_or_wake(wakeup: asyncio.Event, delay: float) -> bool:
    """Sleep `delay` seconds; True if woken early."""
    if not wakeup.is_set() and delay > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wakeup.wait(), delay)
    woken = wakeup.is_set()
    wakeup.clear()
    return woken
