"""A RunPod-compatible serverless endpoint on this machine, for development and tests.

It speaks RunPod's queue API under `/v2/{endpoint_id}`: POST /run, GET|POST
/status/{id}, POST /cancel/{id}, GET /health, with an optional bearer API key
and webhooks. Each job's handler runs in its own process (see `worker.pool`),
at most `concurrency` at once; the rest wait IN_QUEUE.

`worker.local_server` serves it, standalone or inside another application.
"""

from __future__ import annotations

import contextlib
import hmac
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from clients.storage import StorageConfig
from worker.local_jobs import JobQueue, LocalJob
from worker.pool import DEFAULT_HANDLER, check_handler_path
from worker.webhook import WebhookSender

CONCURRENCY_ENV = "LOCAL_WORKER_CONCURRENCY"


class RequestError(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


def default_concurrency(environ: Mapping[str, str] | None = None) -> int:
    """LOCAL_WORKER_CONCURRENCY, else half the CPUs (an export keeps about two busy)."""
    value = (os.environ if environ is None else environ).get(CONCURRENCY_ENV, "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{CONCURRENCY_ENV} must be a positive integer, got {value!r}")
        return int(value)
    return max(1, (os.cpu_count() or 1) // 2)


def create_local_endpoint(
    *,
    storage_config: StorageConfig,
    concurrency: int | None = None,
    api_key: str | None = None,
    execution_timeout_s: float = 600.0,
    endpoint_id: str = "local",
    handler: str = DEFAULT_HANDLER,
) -> FastAPI:
    """The endpoint as an ASGI app; `handler` is a "module:function" import path."""
    check_handler_path(handler)
    webhooks = WebhookSender()

    def notify(job: LocalJob) -> None:
        if job.webhook:
            webhooks.send(job.webhook, job.to_json())

    jobs = JobQueue(
        storage_config=storage_config,
        concurrency=concurrency or default_concurrency(),
        handler=handler,
        execution_timeout_s=execution_timeout_s,
        on_finished=notify,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await webhooks.start()
        try:
            yield
        finally:
            await jobs.close()
            await webhooks.close()

    app = FastAPI(title="Local RunPod endpoint", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.jobs = jobs

    @app.exception_handler(RequestError)
    async def request_error(request: Request, error: RequestError) -> JSONResponse:
        return JSONResponse({"error": str(error)}, status_code=error.status_code)

    def authorize(request: Request) -> None:
        if api_key is None:
            return
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), api_key.encode()):
            raise RequestError(401, "Unauthorized")

    router = APIRouter(prefix=f"/v2/{endpoint_id}", dependencies=[Depends(authorize)])

    @router.post("/run")
    async def run(request: Request) -> dict[str, Any]:
        body = await _json_object(request)
        if "input" not in body:
            raise RequestError(400, "body must have an 'input'")
        webhook = body.get("webhook")
        if webhook is not None and not isinstance(webhook, str):
            raise RequestError(400, "'webhook' must be a URL")
        job = jobs.submit(
            body["input"], webhook=webhook, execution_timeout_s=_execution_timeout(body)
        )
        return {"id": job.id, "status": job.status.value}

    @router.api_route("/status/{job_id}", methods=["GET", "POST"])
    async def status(job_id: str) -> dict[str, Any]:
        return _found(jobs.get(job_id), job_id).to_json()

    @router.post("/cancel/{job_id}")
    async def cancel(job_id: str) -> dict[str, Any]:
        job = _found(jobs.cancel(job_id), job_id)
        return {"id": job.id, "status": job.status.value}

    @router.get("/health")
    async def health() -> dict[str, Any]:
        return jobs.health()

    app.include_router(router)
    return app


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise RequestError(400, "body must be JSON") from None
    if not isinstance(body, dict):
        raise RequestError(400, "body must be a JSON object")
    return body


def _execution_timeout(body: Mapping[str, Any]) -> float | None:
    policy = body.get("policy") or {}
    if not isinstance(policy, dict):
        raise RequestError(400, "'policy' must be an object")
    timeout_ms = policy.get("executionTimeout")
    if timeout_ms is None:
        return None
    if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int | float) or timeout_ms <= 0:
        raise RequestError(400, "'policy.executionTimeout' must be a positive number of ms")
    return float(timeout_ms) / 1000.0


def _found(job: LocalJob | None, job_id: str) -> LocalJob:
    if job is None:
        raise RequestError(404, f"job {job_id} not found")
    return job
