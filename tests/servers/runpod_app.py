"""The fake RunPod endpoint as an ASGI app: RunPod's queue API and the control API.

`/v2/{endpoint_id}/...` follows RunPod's public operation reference; `/_control/...`
is what `tests.servers.runpod_control.RunPodControl` drives. A thin ASGI layer in
front counts every /v2 request, applies the rate limits (429 with Retry-After past
a route's window or concurrency cap, when limits are on) and then injected faults,
before routing; the next one answers the two requests benches make thousands of
times a second, so both sit in front of that fast path too.
"""

# No `from __future__ import annotations`: FastAPI reads the route annotations at
# import time, and they name dependencies local to the router factories.
import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, cast, get_args

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clients.storage import StorageConfig, open_storage
from tests.servers.runpod_limits import RouteGate
from tests.servers.runpod_models import (
    Behaviour,
    BusiestWindow,
    DownMode,
    Fault,
    JobPatch,
    JobView,
    Limits,
    RequestCounts,
    Route,
    RunRecord,
    WebhookDelivery,
    WorkerPool,
)
from tests.servers.runpod_state import FakeEndpoint, FakeJob

_ROUTES: frozenset[str] = frozenset(get_args(Route))


class _RunBody(BaseModel):
    input: dict[str, Any]
    webhook: str | None = None
    policy: dict[str, Any] | None = None


def _error(status_code: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status_code)


# Dependencies are coroutines: FastAPI would run plain functions in its thread
# pool, a thread hop on every request, which made the fake as busy as the API.
def _v2_router(endpoint: FakeEndpoint, api_key: str | None) -> APIRouter:
    async def check_key(request: Request) -> None:
        given = request.headers.get("authorization", "")
        if api_key is not None and given.removeprefix("Bearer ") != api_key:
            raise HTTPException(401, "Unauthorized")

    router = APIRouter(dependencies=[Depends(check_key)])

    async def known(job_id: str) -> FakeJob:
        job = endpoint.get(job_id)
        if job is None:
            raise HTTPException(404, f"request {job_id} does not exist")
        return job

    @router.post("/run")
    async def run(request: Request) -> JSONResponse:
        try:
            body = _RunBody.model_validate_json(await request.body())
        except ValidationError:
            return _error(400, "the body needs an 'input' object")
        job = endpoint.submit(body.input, body.webhook, body.policy)
        return JSONResponse({"id": job.id, "status": job.status})

    @router.get("/status/{job_id}")
    async def status(job: Annotated[FakeJob, Depends(known)]) -> dict[str, Any]:
        return job.status_json()

    @router.post("/cancel/{job_id}")
    async def cancel(job: Annotated[FakeJob, Depends(known)]) -> dict[str, Any]:
        endpoint.cancel(job)
        return {"id": job.id, "status": job.status}

    @router.get("/health")
    async def health() -> dict[str, Any]:
        return endpoint.health()

    @router.post("/purge-queue")
    async def purge_queue() -> dict[str, Any]:
        return {"removed": endpoint.purge_queue(), "status": "completed"}

    return router


def _control_router(endpoint: FakeEndpoint) -> APIRouter:
    router = APIRouter()

    async def any_job(job_id: str) -> FakeJob:
        job = endpoint.jobs.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        return job

    Job = Annotated[FakeJob, Depends(any_job)]

    @router.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    @router.post("/reset")
    async def reset() -> None:
        endpoint.reset()

    @router.get("/jobs")
    async def jobs() -> list[JobView]:
        return [job.view() for job in endpoint.jobs.values()]

    @router.get("/jobs/{job_id}")
    async def job(job: Job) -> JobView:
        return job.view()

    @router.patch("/jobs/{job_id}")
    async def patch_job(job: Job, patch: JobPatch) -> JobView:
        try:
            endpoint.patch(job, patch)
        except ValueError as error:
            raise HTTPException(400, str(error)) from None
        return job.view()

    @router.post("/jobs/{job_id}/forget")
    async def forget(job: Job) -> None:
        job.forgotten = True

    @router.post("/jobs/{job_id}/webhook")
    async def fire_webhook(job: Job, wait: bool = False) -> WebhookDelivery | None:
        task = endpoint.fire_webhook(job)
        if task is None:
            raise HTTPException(409, f"job {job.id} has no webhook")
        return await task if wait else None

    @router.get("/behaviour")
    async def behaviour() -> Behaviour:
        return endpoint.behaviour

    @router.put("/behaviour")
    async def set_behaviour(behaviour: Behaviour) -> Behaviour:
        endpoint.set_behaviour(behaviour)
        return behaviour

    @router.get("/limits")
    async def limits() -> Limits:
        return endpoint.limits

    @router.put("/limits")
    async def set_limits(limits: Limits) -> Limits:
        endpoint.set_limits(limits)
        return limits

    @router.get("/workers")
    async def workers() -> WorkerPool:
        return WorkerPool(workers=endpoint.workers)

    @router.put("/workers")
    async def set_workers(pool: WorkerPool) -> WorkerPool:
        endpoint.set_workers(pool.workers)
        return pool

    @router.get("/faults")
    async def faults() -> list[Fault]:
        return endpoint.faults

    @router.post("/faults")
    async def add_fault(fault: Fault) -> None:
        endpoint.faults.append(fault)

    @router.delete("/faults")
    async def clear_faults() -> None:
        endpoint.faults.clear()

    @router.put("/down")
    async def set_down(mode: DownMode | None = None) -> None:
        endpoint.down = mode

    @router.put("/webhooks")
    async def set_webhooks(enabled: bool) -> None:
        endpoint.webhooks_enabled = enabled

    @router.get("/webhooks")
    async def deliveries() -> list[WebhookDelivery]:
        return endpoint.deliveries

    @router.get("/counts")
    async def counts() -> RequestCounts:
        return endpoint.request_counts()

    @router.delete("/counts")
    async def reset_counts() -> None:
        endpoint.reset_counts()

    @router.get("/busiest")
    async def busiest(route: Route, window_s: float = 10.0) -> BusiestWindow:
        if window_s <= 0:
            raise HTTPException(400, "window_s must be positive")
        requests = endpoint.busiest_window(route, window_s)
        return BusiestWindow(route=route, window_s=window_s, requests=requests)

    @router.get("/runs")
    async def runs() -> list[RunRecord]:
        return endpoint.runs

    return router


class _FaultLayer:
    """Counts every /v2 request, holds it to its route's rate limit, then answers it
    badly when a fault or `down` says so."""

    def __init__(self, app: ASGIApp, endpoint: FakeEndpoint) -> None:
        self.app = app
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        parts = scope["path"].strip("/").split("/") if scope["type"] == "http" else []
        if len(parts) < 3 or parts[0] != "v2" or parts[2] not in _ROUTES:
            await self.app(scope, receive, send)
            return
        route = cast(Route, parts[2])
        job_id = parts[3] if len(parts) > 3 else None
        endpoint, now = self.endpoint, time.monotonic()
        # With limits off, this check is all they cost.
        gate = endpoint.gates.get(route) if endpoint.gates else None
        if gate is not None:
            wait = gate.admit(now)
            if wait is not None:
                endpoint.count_throttled(route, job_id)
                await _throttled(gate, wait)(scope, receive, send)
                return
        endpoint.count(route, job_id, now)
        try:  # an admitted request holds its slot until answered, however that goes
            if endpoint.down or endpoint.faults:
                await self._faulty(route, scope, receive, send)
            else:
                await self.app(scope, receive, send)
        finally:
            if gate is not None:
                gate.release()

    async def _faulty(self, route: Route, scope: Scope, receive: Receive, send: Send) -> None:
        # While down, queued faults wait: they apply once the server is back up.
        fault = None if self.endpoint.down else self.endpoint.take_fault(route)
        kind = self.endpoint.down or (fault.kind if fault else None)
        if kind == "delay" and fault is not None:
            await asyncio.sleep(fault.delay)
        elif kind == "late" and fault is not None:
            await self.app(scope, receive, _answering_after(fault.delay, send))
            return
        elif kind == "drop":
            await _drop_connection(send)
            return
        elif kind is not None:
            headers = {}
            if fault and fault.retry_after is not None and kind in {"429", "503"}:
                headers["Retry-After"] = str(fault.retry_after)
            response = JSONResponse({"error": f"fault {kind}"}, int(kind), headers)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _throttled(gate: RouteGate, wait: float) -> JSONResponse:
    message, retry_after = gate.refusal(wait)
    return JSONResponse({"error": message}, 429, {"Retry-After": str(retry_after)})


class _HotRoutes:
    """`GET /v2/{endpoint}/status/{id}` and `PATCH /_control/jobs/{id}`, answered
    past FastAPI's routing, dependencies and response serialisation.

    In the benches the fake shares the machine's two CPUs with the API it stands
    in for, and through FastAPI these two requests cost it about as much CPU as
    the API spent on the same changes. Only the plain case is answered here: a
    wrong key, an unknown job or a patch that does not validate goes on to the
    FastAPI routes, which give RunPod's (or the control API's) answer.
    """

    def __init__(self, app: ASGIApp, endpoint: FakeEndpoint, api_key: str | None) -> None:
        self.app = app
        self.endpoint = endpoint
        self.authorization = None if api_key is None else f"Bearer {api_key}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        parts = scope["path"].strip("/").split("/") if scope["type"] == "http" else []
        method = scope.get("method")
        if len(parts) == 4 and parts[0] == "v2" and parts[2] == "status" and method == "GET":
            job = self.endpoint.get(parts[3]) if self._authorized(scope) else None
            if job is not None:
                body = json.dumps(job.status_json(), separators=(",", ":"))
                await _send_json(send, body.encode())
                return
        elif len(parts) == 3 and parts[:2] == ["_control", "jobs"] and method == "PATCH":
            await self._patch(parts[2], scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        if self.authorization is None:
            return True
        return (b"authorization", self.authorization) in scope["headers"]

    async def _patch(self, job_id: str, scope: Scope, receive: Receive, send: Send) -> None:
        body = await Request(scope, receive).body()
        job = self.endpoint.jobs.get(job_id)
        try:
            patch = JobPatch.model_validate_json(body)
            if job is None:
                raise ValueError(job_id)
            self.endpoint.patch(job, patch)
        except ValueError:  # pydantic's ValidationError included
            await self.app(scope, _replaying(body), send)
            return
        await _send_json(send, job.view().model_dump_json().encode())


def _replaying(body: bytes) -> Receive:
    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _send_json(send: Send, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _answering_after(delay: float, send: Send) -> Send:
    async def late_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            await asyncio.sleep(delay)
        await send(message)

    return late_send


async def _drop_connection(send: Send) -> None:
    # Promise a body, then return without it: uvicorn closes the connection, so the
    # client sees a broken response (it also logs "returned without completing").
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]}
    )


def create_app(
    *,
    api_key: str | None = None,
    behaviour: Behaviour | None = None,
    storage: StorageConfig | None = None,
    limits: Limits | None = None,
    workers: int | None = None,
) -> ASGIApp:
    """The fake endpoint as an ASGI app; `storage` receives scripted jobs' outputs,
    `limits` are the rate limits (none by default), `workers` the size of the pool
    scripted jobs run on (None: as many as there are jobs)."""
    endpoint = FakeEndpoint(
        behaviour=behaviour or Behaviour(),
        storage=open_storage(storage) if storage is not None else None,
        limits=limits,
        workers=workers,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await endpoint.start()
        yield
        await endpoint.close()

    app = FastAPI(lifespan=lifespan, openapi_url=None)
    app.include_router(_v2_router(endpoint, api_key), prefix="/v2/{endpoint_id}")
    app.include_router(_control_router(endpoint), prefix="/_control")

    @app.exception_handler(HTTPException)
    async def runpod_error(_: Request, error: HTTPException) -> JSONResponse:
        return _error(error.status_code, str(error.detail))

    return _FaultLayer(_HotRoutes(app, endpoint, api_key), endpoint)
