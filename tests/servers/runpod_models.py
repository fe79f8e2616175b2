"""The shapes the fake RunPod server's control API speaks, shared by server and client."""

from __future__ import annotations

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
    """Progress updates a run reports, evenly spaced up to 100 (PROGRESS_STEPS when None)."""


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
    finished_at: float | None = None
    """Wall-clock time (time.time()) the job reached a final status."""


class RunRecord(BaseModel):
    """One accepted /run request."""

    id: str
    input: dict[str, Any]
    webhook: str | None = None
    policy: dict[str, Any] | None = None


class RequestCounts(BaseModel):
    """Requests received on /v2 routes, faulted ones included."""

    routes: dict[str, int] = Field(default_factory=dict)
    jobs: dict[str, dict[str, int]] = Field(default_factory=dict)
    """Job id -> route (status, cancel) -> requests."""

    def route(self, route: Route) -> int:
        return self.routes.get(route, 0)

    def job(self, job_id: str, route: Route = "status") -> int:
        return self.jobs.get(job_id, {}).get(route, 0)


class WebhookDelivery(BaseModel):
    """One POST of a job's final /status JSON (and its input) to its webhook URL."""

    job_id: str
    url: str
    body: dict[str, Any]
    status_code: int | None = None
    error: str | None = None
    seconds: float | None = None
    """How long the receiver took to answer."""
