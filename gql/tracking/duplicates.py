"""Settling a second RunPod run of one export.

Only a `/run` for an export carried its webhook URL, so a webhook naming a
RunPod id other than the stored one is a second run of the same export: a
`/run` RunPod accepted but whose answer was lost (the server died first), then
submitted again. Whichever run is not needed is cancelled on RunPod.
"""

from __future__ import annotations

import logging

from clients.runpod import RunPodJob, RunPodJobNotFound, RunPodStatus
from gql.jobs.models import ExportJob, ExportStatus
from gql.tracking.budget import Priority
from gql.tracking.steps import RunPodSteps

logger = logging.getLogger(__name__)


async def settle_duplicates(steps: RunPodSteps, job: ExportJob, duplicates: set[str]) -> ExportJob:
    """Leave one RunPod run working for `job`; each id is dropped once settled."""
    for duplicate in sorted(duplicates):
        if duplicate != job.runpod_id:
            job = await _settle_duplicate(steps, job, duplicate)
        duplicates.discard(duplicate)
    return job


async def _settle_duplicate(steps: RunPodSteps, job: ExportJob, duplicate: str) -> ExportJob:
    extra = {"job": job.id, "runpod_id": job.runpod_id, "duplicate": duplicate}
    logger.warning(
        "webhook from another RunPod job of this export",
        extra={"action": "duplicate_detected", **extra},
    )
    try:
        observed = await steps.request(
            lambda: steps.runpod.status(duplicate, priority=Priority.URGENT)
        )
    except RunPodJobNotFound:
        logger.warning(
            "duplicate RunPod job is unknown to the endpoint",
            extra={"action": "duplicate_unknown", **extra},
        )
        return job
    usable = observed.status in (RunPodStatus.IN_QUEUE, RunPodStatus.IN_PROGRESS)
    if job.runpod_id is None and not job.is_terminal and (usable or _completed(observed)):
        # A `/run` whose answer was lost: follow that run rather than submit again.
        job = await steps.transitions.apply(
            job, steps.change(job, observed), runpod_id=duplicate, next_attempt_at=None
        )
        if job.status is ExportStatus.CANCELLED:
            # Cancelled meanwhile, while no run was known: RunPod must drop this one.
            job = await steps.transitions.apply(job, cancel_pending=True)
        logger.warning(
            "following a RunPod job whose submission answer was lost",
            extra={"action": "lost_run_adopted", **extra},
        )
        return job
    if usable:
        await steps.cancel_on_runpod(duplicate)
        logger.warning(
            "cancelled a duplicate RunPod job",
            extra={"action": "duplicate_cancelled", **extra},
        )
        return job
    if _completed(observed) and not job.is_terminal:
        # It finished first, on the same input and output key: its result is this
        # export's, and the run being followed is the one left to stop.
        superseded = job.runpod_id
        job = await steps.transitions.apply(job, steps.change(job, observed), runpod_id=duplicate)
        if superseded is not None:
            await steps.cancel_on_runpod(superseded)
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


def _completed(observed: RunPodJob) -> bool:
    return observed.status is RunPodStatus.COMPLETED
