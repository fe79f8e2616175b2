"""The fake RunPod endpoint's state: jobs, scripted runs, faults, counters and webhooks.

Everything here runs on the server's event loop only (routes, scripted runs and
timers), so no locks are needed; tests reach it through the HTTP control routes.

Scripted (`auto`) jobs wait `queue_delay` in the queue, then take a worker: with a
pool (`workers`) they queue for one strictly first-in-first-out by submission, and
at most `workers` jobs are IN_PROGRESS at once (jobs moved there by hand count too,
but are never held back); without one they start at once, as many as there are. A
job leaving IN_PROGRESS frees its worker for the next queued job straight away.
Each job's `policy` is honoured: past `executionTimeout` IN_PROGRESS, or past `ttl`
since submission while still queued, it ends TIMED_OUT.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
import uuid
from array import array
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeGuard, get_args

import aiohttp

from clients.storage import ObjectStorage
from tests.servers.runpod_limits import RouteGate, busiest_window
from tests.servers.runpod_models import (
    PROGRESS_STEPS,
    STATUSES,
    TERMINAL,
    Behaviour,
    DownMode,
    Fault,
    JobPatch,
    JobView,
    Limits,
    RequestCounts,
    Route,
    RouteLimit,
    RunRecord,
    WebhookDelivery,
)
from tests.servers.runpod_outputs import store_output

logger = logging.getLogger(__name__)

WORKER_ID = "fake-worker-1"
WEBHOOK_TIMEOUT = 5.0
HEALTH_WORKERS = 2
"""The workers /health reports when there is no pool."""
_ROUTES: tuple[Route, ...] = get_args(Route)


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
    started_wall: float | None = None
    finished_wall: float | None = None
    execution_timeout: float | None = None
    """Seconds it may stay IN_PROGRESS (its policy's executionTimeout)."""
    run_seconds: float | None = None
    script: asyncio.Task[None] | None = None
    timers: list[asyncio.TimerHandle] = field(default_factory=list)

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
            started_at=self.started_wall,
            finished_at=self.finished_wall,
            run_seconds=self.run_seconds,
        )


@dataclass(frozen=True)
class _Plan:
    """A scripted run, fixed at submission."""

    queue_s: float
    step_s: float
    reports: tuple[dict[str, Any], ...]
    """The outputs it reports IN_PROGRESS, the first one as it takes a worker."""


@dataclass(eq=False)
class _Ticket:
    """A scripted job's place in the queue for a worker, taken at submission."""

    job: FakeJob
    first_output: Any
    started: asyncio.Future[None]
    ready: bool = False
    """Its queue delay is over: it takes the next free worker once it is first in line."""

    @property
    def waiting(self) -> bool:
        """False once started, or once anything else moved or stopped its job."""
        job = self.job
        return not self.started.done() and job.status == "IN_QUEUE" and job.script is not None


class FakeEndpoint:
    """One serverless endpoint's queue, with the switches tests use to misbehave."""

    jobs: dict[str, FakeJob]
    runs: list[RunRecord]
    behaviour: Behaviour
    faults: list[Fault]
    down: DownMode | None
    webhooks_enabled: bool
    deliveries: list[WebhookDelivery]
    limits: Limits
    gates: dict[str, RouteGate]
    """Route -> its rate limit; empty while limits are off (the fast path's one check)."""
    workers: int | None

    def __init__(
        self,
        *,
        behaviour: Behaviour,
        storage: ObjectStorage | None,
        limits: Limits | None = None,
        workers: int | None = None,
    ) -> None:
        self._initial_behaviour = behaviour
        self._initial_limits = limits or Limits()
        self._initial_workers = workers
        self._storage = storage
        self._http: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.jobs = {}
        self.reset()

    def reset(self) -> None:
        """Forget everything but the configuration given at start."""
        for job in self.jobs.values():
            _stop_script(job)
            _stop_timers(job)
        self.jobs = {}
        self.runs = []
        self.set_behaviour(self._initial_behaviour)
        self.faults = []
        self.down = None
        self.webhooks_enabled = True
        self.deliveries: list[WebhookDelivery] = []
        self.reset_counts()
        self.gates = {}
        self.set_limits(self._initial_limits)
        self.workers = self._initial_workers
        self._queue: deque[_Ticket] = deque()
        self._running = 0
        """Jobs IN_PROGRESS, however they got there: the workers in use."""
        self._dispatching = False

    async def start(self) -> None:
        # aiohttp, as the API's own RunPod client: a burst of webhooks costs the fake
        # little CPU, so it times the receiver rather than itself.
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT))

    async def close(self) -> None:
        for job in self.jobs.values():
            _stop_script(job)
            _stop_timers(job)
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._http is not None:
            await self._http.close()

    # --- configuration ---

    def set_behaviour(self, behaviour: Behaviour) -> None:
        """For jobs submitted from now on; restarts the noise's random sequence."""
        self.behaviour = behaviour
        self._rng = random.Random(behaviour.seed)

    def set_limits(self, limits: Limits) -> None:
        """A route that stays limited keeps its window and in-flight counts."""
        self.limits = limits
        self.gates = {route: self._gate(route, limit) for route, limit in limits.routes.items()}

    def _gate(self, route: str, limit: RouteLimit) -> RouteGate:
        gate = self.gates.get(route) or RouteGate(limit)
        gate.limit = limit
        return gate

    def set_workers(self, workers: int | None) -> None:
        """Resize the pool (None: no pool); queued jobs that now fit start at once."""
        self.workers = workers
        if workers is not None:
            self._dispatch()
            return
        for ticket in list(self._queue):
            if ticket.ready and ticket.waiting:
                self._start(ticket)

    # --- the /v2 operations ---

    def submit(self, job_input: dict[str, Any], webhook: str | None, policy: Any) -> FakeJob:
        job = FakeJob(
            id=f"{uuid.uuid4()}-u1",
            input=job_input,
            webhook=webhook,
            execution_timeout=_policy_seconds(policy, "executionTimeout"),
        )
        self.jobs[job.id] = job
        self.runs.append(RunRecord(id=job.id, input=job_input, webhook=webhook, policy=policy))
        ttl = _policy_seconds(policy, "ttl")
        if ttl is not None:
            _later(job, ttl, self._expire_queued)
        if self.behaviour.mode == "auto":
            self._schedule(job, self.behaviour)
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
            _stop_timers(job)
            job.forgotten = True
        return len(queued)

    def health(self) -> dict[str, Any]:
        seen = Counter(job.status for job in self.jobs.values() if not job.forgotten)
        running = seen["IN_PROGRESS"]
        idle = max(0, (HEALTH_WORKERS if self.workers is None else self.workers) - running)
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

    def count(self, route: Route, job_id: str | None, now: float) -> None:
        """One request received and accepted (past the rate limits) at `now`."""
        self._accepted_at[route].append(now)
        self._count_received(route, job_id)

    def count_throttled(self, route: Route, job_id: str | None) -> None:
        """One request received and answered 429 by the rate limits."""
        self._throttled[route] += 1
        self._count_received(route, job_id)

    def _count_received(self, route: Route, job_id: str | None) -> None:
        # Plain dicts, made into RequestCounts when read: this runs on every request.
        self._received[route] += 1
        if job_id is not None:
            per_job = self._per_job.get(job_id)
            if per_job is None:
                per_job = self._per_job[job_id] = {}
            per_job[route] = per_job.get(route, 0) + 1

    def reset_counts(self) -> None:
        self._received: dict[str, int] = dict.fromkeys(_ROUTES, 0)
        self._throttled: dict[str, int] = dict.fromkeys(_ROUTES, 0)
        self._per_job: dict[str, dict[str, int]] = {}
        # Floats in arrays: 8 bytes a request, a few MB for a bench's few minutes.
        self._accepted_at: dict[str, array[float]] = {route: array("d") for route in _ROUTES}

    def request_counts(self) -> RequestCounts:
        accepted = {route: len(times) for route, times in self._accepted_at.items()}
        return RequestCounts(
            routes=_nonzero(self._received),
            jobs={job_id: dict(routes) for job_id, routes in self._per_job.items()},
            accepted=_nonzero(accepted),
            throttled=_nonzero(self._throttled),
        )

    def busiest_window(self, route: Route, window_s: float) -> int:
        """The most requests to `route` accepted in any trailing `window_s` since the
        counts were last reset."""
        return busiest_window(self._accepted_at[route], window_s)

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
        self,
        job: FakeJob,
        status: str,
        *,
        output: Any,
        error: str | None,
        webhook: bool,
        ran: bool = True,
    ) -> None:
        """Every status change goes through here; `ran=False` ends a job that never
        left the queue (no executionTime)."""
        was = job.status
        changed = status != was
        job.status, job.output, job.error = status, output, error
        now = time.monotonic()
        if ran and job.started_at is None and status not in ("IN_QUEUE", "CANCELLED"):
            self._started(job, now)
        if changed:
            self._running += (status == "IN_PROGRESS") - (was == "IN_PROGRESS")
        if status in TERMINAL and changed:
            job.finished_at = now
            job.finished_wall = time.time()
            _stop_timers(job)
            if webhook and self.webhooks_enabled:
                self.fire_webhook(job)
        if changed and self.workers is not None:
            self._dispatch()

    def _started(self, job: FakeJob, now: float) -> None:
        job.started_at = now
        job.started_wall = time.time()
        if job.execution_timeout is not None:
            _later(job, job.execution_timeout, self._expire_running)

    def _expire_queued(self, job: FakeJob) -> None:
        """Its ttl passed: a job still queued times out without ever running."""
        if job.status == "IN_QUEUE" and not job.forgotten:
            _stop_script(job)
            self.move(job, "TIMED_OUT", output=None, error=None, webhook=True, ran=False)

    def _expire_running(self, job: FakeJob) -> None:
        """Its executionTimeout passed while it runs."""
        if job.status == "IN_PROGRESS":
            _stop_script(job)
            self.move(job, "TIMED_OUT", output=None, error=None, webhook=True)

    def fire_webhook(self, job: FakeJob) -> asyncio.Task[WebhookDelivery] | None:
        if job.webhook is None:
            return None
        task = asyncio.create_task(self._deliver(job.webhook, job.id, job.webhook_json()))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _deliver(self, url: str, job_id: str, body: dict[str, Any]) -> WebhookDelivery:
        delivery = WebhookDelivery(job_id=job_id, url=url, body=body, sent_at=time.time())
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

    # --- the worker pool ---

    def _dispatch(self) -> None:
        """Start queued jobs, oldest first, while a worker is free; a job first in
        line but still in its queue delay holds back those behind it."""
        if self._dispatching:  # a start below moves a job, which calls back here
            return
        self._dispatching = True
        try:
            queue = self._queue
            while queue:
                ticket = queue[0]
                if ticket.waiting and (not ticket.ready or not self._free_worker()):
                    return
                queue.popleft()
                if ticket.waiting:
                    self._start(ticket)
        finally:
            self._dispatching = False

    def _free_worker(self) -> bool:
        return self.workers is None or self._running < self.workers

    def _start(self, ticket: _Ticket) -> None:
        # Moved here rather than by its script, so it holds its worker at once.
        self.move(ticket.job, "IN_PROGRESS", output=ticket.first_output, error=None, webhook=False)
        ticket.started.set_result(None)

    async def _take_worker(self, ticket: _Ticket) -> None:
        ticket.ready = True
        if self.workers is None:
            if ticket.waiting:
                self._start(ticket)
        else:
            self._dispatch()
        await ticket.started

    # --- scripted runs ---

    def _schedule(self, job: FakeJob, behaviour: Behaviour) -> None:
        plan = self._plan(job, behaviour)
        job.run_seconds = plan.step_s * len(plan.reports)
        first = plan.reports[0] if plan.reports else None
        ticket = _Ticket(job, first, asyncio.get_running_loop().create_future())
        self._queue.append(ticket)
        job.script = asyncio.create_task(self._script(job, behaviour, plan, ticket))

    def _plan(self, job: FakeJob, behaviour: Behaviour) -> _Plan:
        steps = _progress_steps(behaviour)
        reports = tuple(
            {"progress": progress, "message": message}
            for progress, message in itertools.takewhile(
                lambda step: behaviour.outcome == "COMPLETED" or step[0] <= behaviour.fail_at,
                steps,
            )
        )
        step_s = _step_seconds(behaviour, job.input, len(steps))
        if behaviour.noise:
            step_s *= self._rng.lognormvariate(0.0, behaviour.noise)
        queue_s = behaviour.step if behaviour.queue_delay is None else behaviour.queue_delay
        return _Plan(queue_s=queue_s, step_s=step_s, reports=reports)

    async def _script(
        self, job: FakeJob, behaviour: Behaviour, plan: _Plan, ticket: _Ticket
    ) -> None:
        await asyncio.sleep(plan.queue_s)
        await self._take_worker(ticket)
        for output in plan.reports[1:]:
            await asyncio.sleep(plan.step_s)
            self.move(job, "IN_PROGRESS", output=output, error=None, webhook=False)
        if plan.reports:
            await asyncio.sleep(plan.step_s)
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
        """Store and describe an output, as a worker would (`store_output`)."""
        output_key = job.input.get("output_key")
        if self._storage is None or not isinstance(output_key, str):
            return {"output_key": output_key}
        return store_output(self._storage, job.input, f"fake export of {job.id}\n".encode())


def _progress_steps(behaviour: Behaviour) -> tuple[tuple[int, str], ...]:
    """A run's reports. With `steps`, each says how much of the run is done as its
    step begins (0 %, 1/N, ...), as a worker reporting its work would."""
    if behaviour.steps is None:
        return PROGRESS_STEPS
    count = behaviour.steps
    return tuple((100 * done // count, f"step {done + 1} of {count}") for done in range(count))


def _step_seconds(behaviour: Behaviour, job_input: dict[str, Any], steps: int) -> float:
    """Seconds after each progress report: `step`, or the input-driven run length
    split evenly over the steps of a whole run."""
    per_input_second = behaviour.seconds_per_input_second
    input_seconds = job_input.get("input_seconds")
    if per_input_second is None or not _is_number(input_seconds):
        return behaviour.step
    return per_input_second * max(0.0, float(input_seconds)) / steps


def _nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {key: count for key, count in counts.items() if count}


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _policy_seconds(policy: Any, key: str) -> float | None:
    """A positive millisecond field of a /run policy, in seconds."""
    value = policy.get(key) if isinstance(policy, dict) else None
    return value / 1000 if _is_number(value) and value > 0 else None


def _later(job: FakeJob, delay: float, callback: Callable[[FakeJob], None]) -> None:
    job.timers.append(asyncio.get_running_loop().call_later(delay, callback, job))


def _stop_script(job: FakeJob) -> None:
    if job.script is not None and not job.script.done():
        job.script.cancel()
    job.script = None


def _stop_timers(job: FakeJob) -> None:
    for timer in job.timers:
        timer.cancel()
    job.timers.clear()
