"""The fake RunPod endpoint's state: jobs, scripted runs, faults, counters and webhooks.

Everything here runs on the server's event loop only (routes and scripted runs),
so no locks are needed; tests reach it through the HTTP control routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from clients.storage import ObjectNotFound, ObjectStorage
from tests.servers.runpod_models import (
    PROGRESS_STEPS,
    STATUSES,
    TERMINAL,
    Behaviour,
    DownMode,
    Fault,
    JobPatch,
    JobView,
    RequestCounts,
    Route,
    RunRecord,
    WebhookDelivery,
)

logger = logging.getLogger(__name__)

WORKER_ID = "fake-worker-1"
WEBHOOK_TIMEOUT = 5.0


@dataclass(eq=False)
class FakeJob:
    id: str
    input: dict[str, Any]
    webhook: str | None = None
    status: str = "IN_QUEUE"
    output: Any = None
    error: str | None = None
    forgotten: bool = False
    queued_at: float = field(default_factory=time.monotonic)
    started_at: float | None = None
    finished_at: float | None = None
    finished_wall: float | None = None
    script: asyncio.Task[None] | None = None

    def status_json(self) -> dict[str, Any]:
        """The body of `/status/{id}`, and of the webhook POST."""
        body: dict[str, Any] = {"id": self.id, "status": self.status}
        now = time.monotonic()
        if self.started_at is not None or self.finished_at is not None:
            left_queue = self.started_at or self.finished_at or now
            body["delayTime"] = int((left_queue - self.queued_at) * 1000)
        if self.started_at is not None:
            body["executionTime"] = int(((self.finished_at or now) - self.started_at) * 1000)
            body["workerId"] = WORKER_ID
        if self.output is not None:
            body["output"] = self.output
        if self.error is not None:
            body["error"] = self.error
        return body

    def webhook_json(self) -> dict[str, Any]:
        """The body of the webhook POST: like RunPod's, the `/status` JSON plus the input."""
        return {**self.status_json(), "input": self.input}

    def view(self) -> JobView:
        return JobView(
            id=self.id,
            status=self.status,
            output=self.output,
            error=self.error,
            input=self.input,
            webhook=self.webhook,
            forgotten=self.forgotten,
            status_json=self.status_json(),
            webhook_json=self.webhook_json(),
            finished_at=self.finished_wall,
        )


class FakeEndpoint:
    """One serverless endpoint's queue, with the switches tests use to misbehave."""

    jobs: dict[str, FakeJob]
    runs: list[RunRecord]
    behaviour: Behaviour
    faults: list[Fault]
    down: DownMode | None
    webhooks_enabled: bool
    deliveries: list[WebhookDelivery]
    counts: RequestCounts

    def __init__(self, *, behaviour: Behaviour, storage: ObjectStorage | None) -> None:
        self._initial_behaviour = behaviour
        self._storage = storage
        self._http: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.workers = 2
        self.jobs = {}
        self.reset()

    def reset(self) -> None:
        """Forget everything but the configuration given at start."""
        for job in self.jobs.values():
            _stop_script(job)
        self.jobs = {}
        self.runs = []
        self.behaviour = self._initial_behaviour
        self.faults = []
        self.down = None
        self.webhooks_enabled = True
        self.deliveries: list[WebhookDelivery] = []
        self.counts = RequestCounts()

    async def start(self) -> None:
        # aiohttp, as the API's own RunPod client: a burst of webhooks costs the fake
        # little CPU, so it times the receiver rather than itself.
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT))

    async def close(self) -> None:
        for job in self.jobs.values():
            _stop_script(job)
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._http is not None:
            await self._http.close()

    # --- the /v2 operations ---

    def submit(self, job_input: dict[str, Any], webhook: str | None, policy: Any) -> FakeJob:
        job = FakeJob(id=f"{uuid.uuid4()}-u1", input=job_input, webhook=webhook)
        self.jobs[job.id] = job
        self.runs.append(RunRecord(id=job.id, input=job_input, webhook=webhook, policy=policy))
        if self.behaviour.mode == "auto":
            job.script = asyncio.create_task(self._script(job, self.behaviour))
        return job

    def get(self, job_id: str) -> FakeJob | None:
        job = self.jobs.get(job_id)
        return None if job is None or job.forgotten else job

    def cancel(self, job: FakeJob) -> None:
        # RunPod sends no webhook for a cancel it was asked for.
        if job.status not in TERMINAL:
            _stop_script(job)
            self.move(job, "CANCELLED", output=job.output, error=None, webhook=False)

    def purge_queue(self) -> int:
        queued = [job for job in self.jobs.values() if job.status == "IN_QUEUE"]
        for job in queued:
            _stop_script(job)
            job.forgotten = True
        return len(queued)

    def health(self) -> dict[str, Any]:
        seen = Counter(job.status for job in self.jobs.values() if not job.forgotten)
        running = seen["IN_PROGRESS"]
        idle = max(0, self.workers - running)
        return {
            "jobs": {
                "completed": seen["COMPLETED"],
                "failed": seen["FAILED"] + seen["TIMED_OUT"],
                "inProgress": running,
                "inQueue": seen["IN_QUEUE"],
                "retried": 0,
            },
            "workers": {
                "idle": idle,
                "initializing": 0,
                "ready": idle,
                "running": running,
                "throttled": 0,
                "unhealthy": 0,
            },
        }

    # --- request accounting and faults ---

    def count(self, route: Route, job_id: str | None) -> None:
        self.counts.routes[route] = self.counts.route(route) + 1
        if job_id is not None:
            per_job = self.counts.jobs.setdefault(job_id, {})
            per_job[route] = per_job.get(route, 0) + 1

    def take_fault(self, route: Route) -> Fault | None:
        """The first queued fault for this route, used up by one request."""
        for fault in self.faults:
            if fault.route in (None, route):
                fault.seen += 1
                if fault.seen % fault.every:
                    continue
                fault.count -= 1
                if fault.count == 0:
                    self.faults.remove(fault)
                return fault
        return None

    # --- state changes ---

    def patch(self, job: FakeJob, patch: JobPatch) -> None:
        if patch.status is not None and patch.status not in STATUSES:
            raise ValueError(f"unknown status {patch.status!r}")
        _stop_script(job)
        sent = patch.model_fields_set
        self.move(
            job,
            patch.status or job.status,
            output=patch.output if "output" in sent else job.output,
            error=patch.error if "error" in sent else job.error,
            webhook=patch.webhook and not patch.notify,
        )
        if patch.notify:
            self.fire_webhook(job)

    def move(
        self, job: FakeJob, status: str, *, output: Any, error: str | None, webhook: bool
    ) -> None:
        changed = status != job.status
        job.status, job.output, job.error = status, output, error
        now = time.monotonic()
        if status != "IN_QUEUE" and job.started_at is None and status != "CANCELLED":
            job.started_at = now
        if status in TERMINAL and changed:
            job.finished_at = now
            job.finished_wall = time.time()
            if webhook and self.webhooks_enabled:
                self.fire_webhook(job)

    def fire_webhook(self, job: FakeJob) -> asyncio.Task[WebhookDelivery] | None:
        if job.webhook is None:
            return None
        task = asyncio.create_task(self._deliver(job.webhook, job.id, job.webhook_json()))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _deliver(self, url: str, job_id: str, body: dict[str, Any]) -> WebhookDelivery:
        delivery = WebhookDelivery(job_id=job_id, url=url, body=body)
        assert self._http is not None, "the endpoint was not started"
        started = time.monotonic()
        try:
            async with self._http.post(url, json=body) as response:
                await response.read()
            delivery.status_code = response.status
            delivery.seconds = time.monotonic() - started
        except (aiohttp.ClientError, TimeoutError) as error:
            delivery.error = f"{type(error).__name__}: {error}"
            logger.warning("webhook delivery failed", extra={"action": "webhook", "job": job_id})
        self.deliveries.append(delivery)
        return delivery

    # --- scripted runs ---

    async def _script(self, job: FakeJob, behaviour: Behaviour) -> None:
        await asyncio.sleep(behaviour.step)
        for progress, message in _progress_steps(behaviour):
            if behaviour.outcome != "COMPLETED" and progress > behaviour.fail_at:
                break
            output = {"progress": progress, "message": message}
            self.move(job, "IN_PROGRESS", output=output, error=None, webhook=False)
            await asyncio.sleep(behaviour.step)
        if behaviour.outcome == "FAILED":
            self.move(job, "FAILED", output=None, error=behaviour.error, webhook=True)
        elif behaviour.outcome == "TIMED_OUT":
            self.move(job, "TIMED_OUT", output=None, error=None, webhook=True)
        else:
            try:
                result = await asyncio.to_thread(self._write_output, job)
            except Exception as error:
                self.move(job, "FAILED", output=None, error=f"upload failed: {error}", webhook=True)
            else:
                self.move(job, "COMPLETED", output=result, error=None, webhook=True)

    def _write_output(self, job: FakeJob) -> dict[str, Any]:
        """Store a copy of `input_key` (or a few bytes) at `output_key`, as a worker would."""
        output_key = job.input.get("output_key")
        if self._storage is None or not isinstance(output_key, str):
            return {"output_key": output_key}
        with tempfile.TemporaryDirectory(prefix="runpod-fake-") as folder:
            path = Path(folder) / "output"
            input_key = job.input.get("input_key")
            try:
                if not isinstance(input_key, str):
                    raise ObjectNotFound(str(input_key))
                self._storage.get_file(input_key, path)
            except ObjectNotFound:
                path.write_bytes(f"fake export of {job.id}\n".encode())
            self._storage.put_file(output_key, path)
            return {"output_key": output_key, "size": path.stat().st_size}


def _progress_steps(behaviour: Behaviour) -> tuple[tuple[int, str], ...]:
    if behaviour.steps is None:
        return PROGRESS_STEPS
    count = behaviour.steps
    return tuple((100 * step // count, f"step {step} of {count}") for step in range(1, count + 1))


def _stop_script(job: FakeJob) -> None:
    if job.script is not None and not job.script.done():
        job.script.cancel()
    job.script = None
