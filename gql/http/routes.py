"""Plain HTTP routes beside GraphQL: RunPod's webhook, local downloads, health, metrics."""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from clients.runpod import RunPodClient, RunPodError
from clients.storage import InvalidKey, LocalStorage
from gql.cluster.coordinator import Coordinator
from gql.cluster.feed import ChangeFeed
from gql.db.database import Database
from gql.jobs.repository import JobRepository
from gql.observability import metrics
from gql.subscriptions.hub import SubscriptionHub
from gql.tracking.tracker import JobTracker, reported_run

logger = logging.getLogger(__name__)

router = APIRouter()

HEALTH_CHECK_TIMEOUT_S = 3.0


# The longest `job` and `token` a webhook URL of ours carries, with room to spare.
WEBHOOK_PARAM_MAX_CHARS = 128
WEBHOOK_ACCEPTED = b'{"ok":true}'
WEBHOOK_PATH = "/webhooks/runpod"


@router.post(WEBHOOK_PATH, include_in_schema=False)
async def runpod_webhook(request: Request) -> Response:
    """RunPod's completion callback, which may reach any process: the job's
    follower, wherever it runs, looks at the job at once.

    Parameters are read by hand and the answer is fixed bytes, past FastAPI's
    validation: a burst of completions brings one webhook per job, and that
    validation, with the access-log line now left out, cost about 0.15 ms of
    CPU on each (docs/benchmarks.md). `gql.http.shortcuts` calls it past FastAPI's
    routing too.
    """
    coordinator: Coordinator = request.app.state.coordinator
    job = request.query_params.get("job", "")
    token = request.query_params.get("token", "")
    stored = None
    if job and len(job) <= WEBHOOK_PARAM_MAX_CHARS and len(token) <= WEBHOOK_PARAM_MAX_CHARS:
        repo: JobRepository = request.app.state.job_repository
        # Followed here, the job is known without a database read.
        stored = coordinator.known_job(job) or await repo.get(job)
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


@router.get("/files/{key:path}", include_in_schema=False)
async def download(
    request: Request, key: str, expires: int = Query(), signature: str = Query(max_length=128)
) -> FileResponse:
    """Local storage downloads, valid only through a signed, unexpired URL."""
    storage = request.app.state.storage
    if not isinstance(storage, LocalStorage):
        raise HTTPException(status_code=404)
    try:
        valid = storage.verify(key, expires, signature)
        path = storage.path_of(key)
    except InvalidKey:
        raise HTTPException(status_code=404) from None
    if not valid:
        raise HTTPException(status_code=403, detail="Invalid or expired download URL")
    if not path.is_file():
        raise HTTPException(status_code=404)
    return FileResponse(path, media_type="video/mp4", filename=path.name)


@router.get("/healthz", include_in_schema=False)
async def healthz(request: Request) -> JSONResponse:
    database: Database = request.app.state.database
    tracker: JobTracker = request.app.state.tracker
    coordinator: Coordinator = request.app.state.coordinator
    feed: ChangeFeed = request.app.state.feed
    runpod: RunPodClient | None = request.app.state.runpod
    checks: dict[str, Any] = {
        "database": await _database_check(database),
        "tracker": {"ok": tracker.running, "following": tracker.followed_count},
        "feed": feed.health(),
        "leases": coordinator.health(),
        "runpod": await _runpod_check(runpod),
    }
    healthy = all(check["ok"] for check in checks.values())
    hub: SubscriptionHub = request.app.state.subscription_hub
    load = {
        "subscription_groups": hub.group_count,
        "subscribers": hub.subscriber_count,
        "tasks": len(asyncio.all_tasks()),
    }
    return JSONResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks, "load": load},
        status_code=200 if healthy else 503,
    )


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(request: Request) -> Response:
    """Prometheus exposition; across `serve --workers`, every worker's figures."""
    request.app.state.gauges.sample()
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)


async def _database_check(database: Database) -> dict[str, Any]:
    try:
        async with asyncio.timeout(HEALTH_CHECK_TIMEOUT_S):
            await database.fetch_one("select_one")
    except Exception as error:
        logger.warning("database check failed", extra={"action": "healthz", "error": repr(error)})
        return {"ok": False, "error": "database unreachable"}
    return {"ok": True, "dialect": database.dialect}


async def _runpod_check(runpod: RunPodClient | None) -> dict[str, Any]:
    if runpod is None:
        return {"ok": True, "configured": False}
    try:
        async with asyncio.timeout(HEALTH_CHECK_TIMEOUT_S):
            health = await runpod.health()
    except (RunPodError, TimeoutError) as error:
        return {"ok": False, "configured": True, "error": str(error) or "timed out"}
    return {"ok": True, "configured": True, "workers": health.get("workers")}
