"""RunPod's completion callback: `POST /webhooks/runpod?job=…&token=…`."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from gql.jobs.models import ExportJob
from gql.observability import metrics
from gql.runtime import runtime_of

logger = logging.getLogger(__name__)

# The longest `job` and `token` a webhook URL of ours carries, with room to spare.
WEBHOOK_PARAM_MAX_CHARS = 128
WEBHOOK_ACCEPTED = b'{"ok":true}'
WEBHOOK_PATH = "/webhooks/runpod"


async def runpod_webhook(request: Request) -> Response:
    """RunPod's completion callback, which may reach any process: the job's
    follower, wherever it runs, looks at the job at once.

    Parameters are read by hand and the answer is fixed bytes, past FastAPI's
    validation: a burst of completions brings one webhook per job, and that
    validation, with the access-log line now left out, cost about 0.15 ms of
    CPU on each (docs/benchmarks.md). `gql.http.shortcuts` calls it past FastAPI's
    routing too.
    """
    runtime = runtime_of(request.app)
    coordinator = runtime.coordinator
    job = request.query_params.get("job", "")
    token = request.query_params.get("token", "")
    stored = None
    if job and len(job) <= WEBHOOK_PARAM_MAX_CHARS and len(token) <= WEBHOOK_PARAM_MAX_CHARS:
        # Followed here, the job is known without a database read.
        stored = coordinator.known_job(job) or await runtime.jobs.get(job)
    # Bytes: `compare_digest` raises on non-ASCII text.
    if stored is None or not hmac.compare_digest(stored.webhook_token.encode(), token.encode()):
        metrics.WEBHOOKS.labels("rejected").inc()
        logger.warning(
            "webhook rejected",
            extra={"action": "webhook_rejected", "job": job[:WEBHOOK_PARAM_MAX_CHARS]},
        )
        return JSONResponse({"detail": "Invalid webhook token"}, status_code=401)
    try:
        body = await request.json()
    except ValueError:
        body = None
    metrics.WEBHOOKS.labels("accepted").inc()
    run = reported_run(stored, body if isinstance(body, dict) else {})
    coordinator.poke(stored, run, changed=False)
    return Response(WEBHOOK_ACCEPTED, media_type="application/json")


def reported_run(job: ExportJob, body: Mapping[str, Any]) -> str | None:
    """The RunPod id a webhook body names, unless its input says it is another job's.

    The body is only a hint: a job's state is read from `/status`, never from it."""
    runpod_id, job_input = body.get("id"), body.get("input")
    if isinstance(job_input, Mapping) and job_input.get("job_id") != job.id:
        return None
    return runpod_id if isinstance(runpod_id, str) and runpod_id else None
