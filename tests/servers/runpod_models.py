"""The shapes the fake RunPod server's control API speaks, shared by server and client.

`RUNPOD_LIMITS` is RunPod's documented per-endpoint rate limits table ("Send API
requests" page of serverless endpoints), for `Limits.of("runpod")`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field

Route = Literal["run", "status", "cancel", "health", "purge-queue"]
FaultKind = Literal["429", "500", "503", "delay", "late", "drop"]
DownMode = Literal["503", "drop"]
Outcome = Literal["COMPLETED", "FAILED", "TIMED_OUT"]

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"})
STATUSES = frozenset({"IN_QUEUE", "IN_PROGRESS"}) | TERMINAL

# What a scripted job reports while it runs, like a real export worker.
PROGRESS_STEPS: tuple[tuple[int, str], ...] = (
    (0, "starting"),
    (20, "downloading input"),
    (40, "decoding"),
    (60, "encoding"),
    (80, "encoding"),
    (100, "uploading output"),
)


class Behaviour(BaseModel):
    """What happens to each new job: nothing (`manual`) or a scripted run (`auto`)."""

    mode: Literal["manual", "auto"] = "manual"
    step: float = Field(default=0.1, ge=0)
    """Seconds between two scripted steps (queue wait, each progress update)."""
    outcome: Outcome = "COMPLETED"
    fail_at: int = Field(default=40, ge=0, le=100)
    """For FAILED and TIMED_OUT: the last progress reported before the job ends."""
    error: str = "export failed on the worker"
    steps: int | None = Field(default=None, ge=1)
    """Progress updates a run reports, one as each of its evenly long steps begins
    saying how much is done (0, 100/steps, ...); PROGRESS_STEPS when None."""
    queue_delay: float | None = Field(default=None, ge=0)
    """Seconds a job waits in the queue before it may take a worker (`step` when None)."""
    seconds_per_input_second: float | None = Field(default=None, ge=0)
    """When set, a job whose input has a numeric `input_seconds` runs (from leaving the
    queue to COMPLETED) this many seconds per input second, split evenly over its
    progress steps; other jobs run `step` per progress step."""
    noise: float = Field(default=0.0, ge=0)
    """Sigma of a lognormal factor (median 1) drawn per job, at submission, that
    multiplies its run length; 0 leaves run lengths as they are."""
    seed: int = 0
    """Seed of the noise: setting a behaviour restarts its random sequence, so the
    same submissions get the same run lengths."""


class Fault(BaseModel):
    """Answer the next `count` matching requests badly instead of normally."""

    kind: FaultKind
    count: int = Field(default=1, ge=1)
    route: Route | None = None
    """Only requests to this route; every /v2 route when None."""
    retry_after: int | None = 1
    """Retry-After header (seconds) sent with 429 and 503; none when None."""
    delay: float = Field(default=0.0, ge=0)
    """For `delay`: seconds to sleep before handling the request; for `late`: after
    handling it, before answering (the request takes effect, its answer comes late)."""
    every: int = Field(default=1, ge=1)
    """Hit only every n-th matching request (2: half of them); the others pass."""
    seen: int = 0
    """Matching requests so far (server-side bookkeeping)."""


class JobPatch(BaseModel):
    """A control change to one job; fields not sent stay as they are."""

    status: str | None = None
    output: Any = None
    error: str | None = None
    webhook: bool = True
    """Deliver the webhook when this change makes the job terminal."""
    notify: bool = False
    """Deliver the webhook now, whatever the status, as a hand-fired one is (the
    benches drive each change through a webhook with one request this way)."""


class JobView(BaseModel):
    """A job as the fake holds it: its /status JSON plus what /run received."""

    id: str
    status: str
    output: Any = None
    error: str | None = None
    input: dict[str, Any]
    webhook: str | None = None
    forgotten: bool = False
    status_json: dict[str, Any]
    webhook_json: dict[str, Any]
    started_at: float | None = None
    """Wall-clock time (time.time()) the job went IN_PROGRESS (or straight to a final
    status other than CANCELLED by hand); None while it has not run."""
    finished_at: float | None = None
    """Wall-clock time (time.time()) the job reached a final status."""
    run_seconds: float | None = None
    """A scripted job's planned time IN_PROGRESS (noise included, the output's upload
    not); None for a job submitted in manual mode."""


class RunRecord(BaseModel):
    """One accepted /run request."""

    id: str
    input: dict[str, Any]
    webhook: str | None = None
    policy: dict[str, Any] | None = None


class RequestCounts(BaseModel):
    """Requests received on /v2 routes, throttled and faulted ones included."""

    routes: dict[str, int] = Field(default_factory=dict)
    jobs: dict[str, dict[str, int]] = Field(default_factory=dict)
    """Job id -> route (status, cancel) -> requests."""
    accepted: dict[str, int] = Field(default_factory=dict)
    """Route -> requests the rate limits let through (all of them while limits are off);
    a fault may still have answered them badly."""
    throttled: dict[str, int] = Field(default_factory=dict)
    """Route -> requests the rate limits answered with 429 (injected 429s not included)."""

    def route(self, route: Route) -> int:
        return self.routes.get(route, 0)

    def job(self, job_id: str, route: Route = "status") -> int:
        return self.jobs.get(job_id, {}).get(route, 0)

    def accepted_count(self, route: Route) -> int:
        return self.accepted.get(route, 0)

    def throttled_count(self, route: Route) -> int:
        return self.throttled.get(route, 0)


class RouteLimit(BaseModel):
    """One route's rate limit; past it the fake answers 429 with a Retry-After."""

    requests: int | None = Field(default=None, ge=1)
    """Requests accepted in any trailing `window_s` (a sliding window); None: no cap."""
    window_s: float = Field(default=10.0, gt=0)
    concurrency: int | None = Field(default=None, ge=1)
    """Requests of this route in flight at once; None: no cap."""


class Limits(BaseModel):
    """Rate limits per /v2 route; routes not named (and an empty table) are not limited."""

    routes: dict[Route, RouteLimit] = Field(default_factory=dict)

    @classmethod
    def of(cls, limits: LimitsLike) -> Limits:
        """`limits` as a table: "runpod" is RunPod's documented one, None none at all."""
        if limits is None:
            return cls()
        if limits == "runpod":
            return RUNPOD_LIMITS.model_copy(deep=True)
        if isinstance(limits, Limits):
            return limits
        return cls(routes=dict(limits))


LimitsLike = Limits | Literal["runpod"] | Mapping[Route, RouteLimit] | None
"""What the constructors and `RunPodControl.set_limits` accept for limits."""

# Per endpoint. /status shares its limit with /stream, which the fake does not serve.
RUNPOD_LIMITS = Limits(
    routes={
        "run": RouteLimit(requests=1000, window_s=10.0, concurrency=200),
        "status": RouteLimit(requests=2000, window_s=10.0, concurrency=400),
        "cancel": RouteLimit(requests=100, window_s=10.0, concurrency=20),
        "purge-queue": RouteLimit(requests=2, window_s=10.0),
    }
)


class WorkerPool(BaseModel):
    """How many scripted jobs may be IN_PROGRESS at once; None: no limit."""

    workers: int | None = Field(default=None, ge=0)


class BusiestWindow(BaseModel):
    """The most requests to `route` accepted in any trailing `window_s` so far."""

    route: Route
    window_s: float
    requests: int


class WebhookDelivery(BaseModel):
    """One POST of a job's final /status JSON (and its input) to its webhook URL."""

    job_id: str
    url: str
    body: dict[str, Any]
    status_code: int | None = None
    error: str | None = None
    seconds: float | None = None
    """How long the receiver took to answer."""
    sent_at: float | None = None
    """Wall-clock time (time.time()) the POST went out."""
