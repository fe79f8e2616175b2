"""Plain HTTP routes beside GraphQL: local downloads, health, metrics (and RunPod's
webhook, in `gql.http.runpod_webhook`)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from clients.storage import InvalidKey, LocalStorage, content_type
from gql.db.database import Database
from gql.http.runpod_webhook import WEBHOOK_PATH, runpod_webhook
from gql.observability import metrics
from gql.runtime import runtime_of
from gql.tracking.tracker import JobTracker

logger = logging.getLogger(__name__)

router = APIRouter()
# Reached past this router by `gql.http.shortcuts`; registered here for the rest
# (a `GET` gets its 405).
router.add_api_route(WEBHOOK_PATH, runpod_webhook, methods=["POST"], include_in_schema=False)

HEALTH_CHECK_TIMEOUT_S = 3.0


@router.get("/files/{key:path}", include_in_schema=False)
async def download(
    request: Request, key: str, expires: int = Query(), signature: str = Query(max_length=128)
) -> FileResponse:
    """Local storage downloads, valid only through a signed, unexpired URL."""
    storage = runtime_of(request.app).storage
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
    return FileResponse(path, media_type=content_type(key), filename=path.name)


@router.get("/healthz", include_in_schema=False)
async def healthz(request: Request) -> JSONResponse:
    runtime = runtime_of(request.app)
    tracker = runtime.tracker
    checks: dict[str, Any] = {
        "database": await _database_check(runtime.database),
        "tracker": {"ok": tracker.running, "following": tracker.followed_count},
        "feed": runtime.feed.health(),
        "leases": runtime.coordinator.health(),
        "runpod": _runpod_check(tracker),
    }
    healthy = all(check["ok"] for check in checks.values())
    hub = runtime.hub
    load = {
        "subscription_groups": hub.group_count,
        "subscribers": hub.subscriber_count,
        "tasks": len(asyncio.all_tasks()),
        "jobs_watched": tracker.watched_count,
    }
    budget = tracker.budget.health() if tracker.budget is not None else {}
    return JSONResponse(
        {
            "status": "ok" if healthy else "unavailable",
            "checks": checks,
            "load": load,
            "runpod_budget": budget,
        },
        status_code=200 if healthy else 503,
    )


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(request: Request) -> Response:
    """Prometheus exposition; across `serve --workers`, every worker's figures."""
    runtime_of(request.app).gauges.sample()
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


def _runpod_check(tracker: JobTracker) -> dict[str, Any]:
    """RunPod's /health as the cluster last read it (one process asks every few seconds)."""
    if tracker.health is None:
        return {"ok": True, "configured": False}
    return tracker.health.health()
