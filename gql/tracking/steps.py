"""The steps a follower takes on RunPod: submit a job, poll it, cancel it.

Each step's requests pass the endpoint's circuit breaker, then wait their turn
in RunPod's budget (the client's gate, `gql.tracking.budget`), and the step
writes what it learnt through `JobTransitions`. The cap on this process's
requests in flight is the client's connection pool, entered only once the
budget grants a request: a cap taken before the budget would be first come,
first served, and a poll someone waits on would queue behind a burst of starts
waiting for `/run`'s budget. A step raises `RunPodUnavailable` or `RunPodRejected`
when it could not finish; the follower backs off and takes it again, or at
once after `RunPodThrottled` (the budget paces that retry).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from clients.runpod import (
    RunPodClient,
    RunPodJob,
    RunPodJobNotFound,
    RunPodRejected,
    RunPodThrottled,
    RunPodUnavailable,
)
from gql.clock import utcnow
from gql.jobs.models import Change, ExportJob, ExportStatus, change_from_runpod
from gql.jobs.output import poster_key
from gql.jobs.transitions import JobTransitions
from gql.tracking.budget import Priority
from gql.tracking.circuit import EndpointCircuit, backoff
from gql.tracking.policy import ExecutionPolicy

logger = logging.getLogger(__name__)

SUBMIT_BACKOFF_MAX_S = 60.0
JOB_UNKNOWN_TO_ENDPOINT = (
    "The endpoint no longer knows this job (it expired, was purged or its worker restarted); "
    "retry the export"
)


class RunPodSteps:
    def __init__(
        self,
        runpod: RunPodClient,
        transitions: JobTransitions,
        *,
        poll_interval_s: float,
        webhook_base_url: str | None,
        circuit: EndpointCircuit,
        policy: ExecutionPolicy,
    ) -> None:
        self.runpod = runpod
        self.transitions = transitions
        self._policy = policy
        self._interval = poll_interval_s
        self._webhook_base_url = webhook_base_url
        self._circuit = circuit

    async def submit(self, job: ExportJob) -> tuple[ExportJob, float]:
        """`/run` the job, unless its next attempt is not due yet; returns the job and
        how long to wait before its next step."""
        now = utcnow()
        if job.next_attempt_at is not None and job.next_attempt_at > now:
            return job, (job.next_attempt_at - now).total_seconds()
        attempts = job.attempts + 1
        wait = backoff(attempts, base=1.0, cap=SUBMIT_BACKOFF_MAX_S)
        policy = self._policy.for_job(job)
        # Counted before the call, so an attempt lost to a crash still counts.
        job = await self.transitions.apply(
            job,
            attempts=attempts,
            next_attempt_at=now + timedelta(seconds=wait),
            execution_timeout_s=policy["executionTimeout"] // 1000,
        )
        try:
            accepted = await self.request(
                lambda: self.runpod.run(
                    payload(job),
                    webhook=self._webhook_url(job),
                    policy=policy,
                    priority=Priority.URGENT,
                    # A burst of starts goes out in the order it came in.
                    order=job.created_at.timestamp(),
                )
            )
        except RunPodThrottled:
            # Early, not failed: back in line for /run's budget at once (the stored
            # backoff is only for a process that takes the job over).
            return job.evolve(next_attempt_at=None), 0.0
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
            job = await self.transitions.apply(
                job, Change(status=ExportStatus.ERROR, error=f"RunPod rejected the job: {error}")
            )
            return job, 0.0
        job = await self.transitions.apply(
            job,
            self.change(job, accepted),
            runpod_id=accepted.id,
            next_attempt_at=None,
        )
        if job.status is ExportStatus.CANCELLED:
            # Cancelled while the submission was in flight: RunPod must drop it too.
            job = await self.transitions.apply(job, cancel_pending=True)
        logger.info(
            "job submitted",
            extra={"action": "submit", "job": job.id, "runpod_id": accepted.id},
        )
        return job, self._interval

    async def poll(self, job: ExportJob, priority: Priority = Priority.URGENT) -> ExportJob:
        """Ask `/status` and write the change; a job RunPod forgot ends in ERROR."""
        assert job.runpod_id is not None
        runpod_id = job.runpod_id
        try:
            observed = await self.request(lambda: self.runpod.status(runpod_id, priority=priority))
        except RunPodJobNotFound:
            return await self.transitions.apply(
                job, Change(status=ExportStatus.ERROR, error=JOB_UNKNOWN_TO_ENDPOINT)
            )
        return await self.transitions.apply(job, self.change(job, observed))

    async def send_cancel(self, job: ExportJob) -> ExportJob:
        """Tell RunPod to drop a job cancelled here, then stop owing it that."""
        if job.runpod_id is not None:
            await self.cancel_on_runpod(job.runpod_id)
        return await self.transitions.apply(job, cancel_pending=False)

    async def cancel_on_runpod(self, runpod_id: str) -> None:
        with contextlib.suppress(RunPodJobNotFound):
            await self.request(lambda: self.runpod.cancel(runpod_id, priority=Priority.URGENT))

    @staticmethod
    def change(job: ExportJob, observed: RunPodJob) -> Change:
        """What RunPod's answer about `job` changes."""
        return change_from_runpod(observed, execution_timeout_s=job.execution_timeout_s)

    async def request(self, call: Callable[[], Awaitable[RunPodJob]]) -> RunPodJob:
        async with self._circuit.admitted():
            return await call()

    def _webhook_url(self, job: ExportJob) -> str | None:
        if self._webhook_base_url is None:
            return None
        return f"{self._webhook_base_url}?job={job.id}&token={job.webhook_token}"


def payload(job: ExportJob) -> dict[str, object]:
    """The `input` of the job's `/run`: what the worker's handler receives."""
    return {
        "job_id": job.id,
        "user_id": job.user_id,
        "type": job.kind.value,
        "input_key": job.input_key,
        "output_key": job.output_key,
        "poster_key": poster_key(job.output_key),
        "params": dict(job.params),
        # Not read by the handler: for RunPod's dashboards and the stand-in's run lengths.
        "input_seconds": job.input_seconds,
    }
