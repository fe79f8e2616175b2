"""Typed client for the fake RunPod server's `/_control/` routes.

It is synchronous on purpose: it works from fixtures, plain scripts and async tests
alike (the server runs in another thread or process, so a short blocking call
holds nothing up), and its calls return before any webhook is delivered.
"""

from __future__ import annotations

import time
from enum import Enum
from typing import Any, Literal, Self

import httpx
from pydantic import TypeAdapter

from tests.servers.runpod_models import (
    Behaviour,
    BusiestWindow,
    DownMode,
    Fault,
    FaultKind,
    JobView,
    Limits,
    LimitsLike,
    Outcome,
    RequestCounts,
    Route,
    RunRecord,
    WebhookDelivery,
    WorkerPool,
)


class _Keep(Enum):
    KEEP = "keep"


KEEP = _Keep.KEEP
"""Leave this field of the job as it is."""

_jobs = TypeAdapter(list[JobView])
_faults = TypeAdapter(list[Fault])
_runs = TypeAdapter(list[RunRecord])
_deliveries = TypeAdapter(list[WebhookDelivery])


class RunPodControl:
    """Drives one fake RunPod server; `base_url` is its root, e.g. http://127.0.0.1:9000."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self._http = httpx.Client(base_url=f"{base_url.rstrip('/')}/_control", timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Block until the server answers (for a server started as a process)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._call("GET", "/ping")
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def reset(self) -> None:
        """Drop jobs, faults, counters and webhook records; restore the start behaviour,
        limits and worker pool."""
        self._call("POST", "/reset")

    # --- jobs ---

    def jobs(self) -> list[JobView]:
        return _jobs.validate_python(self._call("GET", "/jobs"))

    def job(self, job_id: str) -> JobView:
        return JobView.model_validate(self._call("GET", f"/jobs/{job_id}"))

    def set_job(
        self,
        job_id: str,
        status: str | None = None,
        *,
        output: Any = KEEP,
        error: str | _Keep | None = KEEP,
        webhook: bool = True,
        notify: bool = False,
    ) -> JobView:
        """Change a job (stopping its scripted run); reaching a terminal status fires
        its webhook unless `webhook` is False or webhooks are switched off; `notify`
        fires it in any case, whatever the status."""
        patch: dict[str, Any] = {"status": status, "webhook": webhook, "notify": notify}
        if output is not KEEP:
            patch["output"] = output
        if error is not KEEP:
            patch["error"] = error
        return JobView.model_validate(self._call("PATCH", f"/jobs/{job_id}", json=patch))

    def progress(self, job_id: str, progress: int, message: str = "encoding") -> JobView:
        output = {"progress": progress, "message": message}
        return self.set_job(job_id, "IN_PROGRESS", output=output)

    def complete(self, job_id: str, output: Any = None, *, webhook: bool = True) -> JobView:
        return self.set_job(job_id, "COMPLETED", output=output, error=None, webhook=webhook)

    def fail(self, job_id: str, error: str = "export failed", *, webhook: bool = True) -> JobView:
        return self.set_job(job_id, "FAILED", output=None, error=error, webhook=webhook)

    def forget(self, job_id: str) -> None:
        """From now on the /v2 routes answer 404 for this job."""
        self._call("POST", f"/jobs/{job_id}/forget")

    def fire_webhook(self, job_id: str, *, wait: bool = False) -> WebhookDelivery | None:
        """POST the job's webhook body (its /status JSON and input) now; with `wait`, return
        the outcome (do not wait when the receiver runs on the loop this call blocks)."""
        data = self._call("POST", f"/jobs/{job_id}/webhook", params={"wait": wait})
        return None if data is None else WebhookDelivery.model_validate(data)

    # --- scripted jobs ---

    def behaviour(self) -> Behaviour:
        return Behaviour.model_validate(self._call("GET", "/behaviour"))

    def set_behaviour(
        self,
        mode: Literal["manual", "auto"] = "auto",
        *,
        step: float = 0.1,
        outcome: Outcome = "COMPLETED",
        fail_at: int = 40,
        error: str = "export failed on the worker",
        steps: int | None = None,
        queue_delay: float | None = None,
        seconds_per_input_second: float | None = None,
        noise: float = 0.0,
        seed: int = 0,
    ) -> Behaviour:
        """Applies to jobs submitted from now on (see `Behaviour` for each field)."""
        behaviour = Behaviour(
            mode=mode,
            step=step,
            outcome=outcome,
            fail_at=fail_at,
            error=error,
            steps=steps,
            queue_delay=queue_delay,
            seconds_per_input_second=seconds_per_input_second,
            noise=noise,
            seed=seed,
        )
        return Behaviour.model_validate(
            self._call("PUT", "/behaviour", json=behaviour.model_dump())
        )

    # --- the service's shape: rate limits and workers ---

    def limits(self) -> Limits:
        return Limits.model_validate(self._call("GET", "/limits"))

    def set_limits(self, limits: LimitsLike) -> Limits:
        """Rate limits from now on: "runpod" (RunPod's documented table), a `Limits`, a
        {route: RouteLimit} mapping, or None (none at all). A route limited before and
        after keeps counting its window and requests in flight."""
        body = Limits.of(limits).model_dump(mode="json")
        return Limits.model_validate(self._call("PUT", "/limits", json=body))

    def workers(self) -> int | None:
        return WorkerPool.model_validate(self._call("GET", "/workers")).workers

    def set_workers(self, workers: int | None) -> None:
        """Size of the worker pool scripted jobs run on (None: no pool, no waiting);
        queued jobs that fit in a larger pool start at once."""
        self._call("PUT", "/workers", json=WorkerPool(workers=workers).model_dump())

    # --- faults ---

    def inject(
        self,
        kind: FaultKind,
        *,
        count: int = 1,
        route: Route | None = None,
        retry_after: int | None = 1,
        delay: float = 0.0,
        every: int = 1,
    ) -> None:
        """Answer the next `count` requests (to `route`, or any; only every `every`-th
        one) with `kind`: 429, 500 or 503, `delay` (sleep, then handle), `late` (handle,
        then sleep before answering) or `drop` (close the connection mid-answer)."""
        fault = Fault(
            kind=kind, count=count, route=route, retry_after=retry_after, delay=delay, every=every
        )
        self._call("POST", "/faults", json=fault.model_dump())

    def faults(self) -> list[Fault]:
        """Faults not used up yet."""
        return _faults.validate_python(self._call("GET", "/faults"))

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def set_down(self, mode: DownMode | None) -> None:
        """Every /v2 request answers 503 or has its connection dropped; None ends it."""
        self._call("PUT", "/down", params={} if mode is None else {"mode": mode})

    # --- webhooks ---

    def set_webhooks(self, enabled: bool) -> None:
        self._call("PUT", "/webhooks", params={"enabled": enabled})

    def webhook_deliveries(self) -> list[WebhookDelivery]:
        return _deliveries.validate_python(self._call("GET", "/webhooks"))

    # --- what the server received ---

    def counts(self) -> RequestCounts:
        """Requests received, accepted and throttled, per route (and per job)."""
        return RequestCounts.model_validate(self._call("GET", "/counts"))

    def reset_counts(self) -> None:
        """Zero the counts and the accepted requests' timeline (not the rate limits'
        own windows)."""
        self._call("DELETE", "/counts")

    def busiest_window(self, route: Route, window_s: float = 10.0) -> int:
        """The most requests to `route` accepted in any trailing `window_s` since the
        start or the last `reset_counts`, limits on or off."""
        params = {"route": route, "window_s": window_s}
        return BusiestWindow.model_validate(self._call("GET", "/busiest", params=params)).requests

    def runs(self) -> list[RunRecord]:
        """Every accepted /run request, oldest first."""
        return _runs.validate_python(self._call("GET", "/runs"))
