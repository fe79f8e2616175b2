"""Async client for the queue API of a RunPod serverless endpoint (`/v2/{endpoint_id}`).

Exceptions::

    RunPodError                 malformed answer (and the root of the tree)
    ├── RunPodUnavailable       network error, timeout, 429 or 5xx, still failing after
    │   │                       the retries made here; the caller tries again later
    │   └── RunPodThrottled     429 with a request gate: not retried here, the gate
    │                           slows the route down and the caller asks again
    ├── RunPodJobNotFound       404 for a job id: RunPod lost it or never had it
    └── RunPodRejected          any other 4xx (bad input, bad API key); never retried

Requests go out through one aiohttp session: RunPod is polled once per followed
job per interval, so a request's CPU cost is paid thousands of times a second,
and aiohttp's (C-accelerated) client costs a fraction of httpx's for each.

Transient failures are retried inside the client with stamina: exponential backoff
with jitter, bounded by a number of attempts and a total time. A `Retry-After`
header on a 429 or 503 replaces the computed wait (capped at `wait_max`).
`on_unavailable` hears of every failed attempt at once, retried or not;
`on_response` of every attempt: its action, outcome (ok, throttled, unavailable,
not_found, rejected, invalid) and duration.

With a `RequestGate`, every attempt (retries included) waits for the gate's
admission on its route (`run`, `status`, `cancel`, `health`) at the caller's
priority, and a 429 is reported to the gate instead of being retried into
RunPod's limit.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp
import stamina

logger = logging.getLogger(__name__)

_RETRYABLE_STATUS_CODES = frozenset({408, 429})
_BODY_EXCERPT = 200


class RunPodError(Exception):
    """RunPod answered something this client cannot use."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__)


class RunPodUnavailable(RunPodError):
    """RunPod is unreachable or overloaded; try again later."""

    def __init__(self, message: str | None = None, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RunPodThrottled(RunPodUnavailable):
    """RunPod refused the request for its rate limit (429)."""


class RunPodJobNotFound(RunPodError):
    """RunPod does not know this job."""


class RunPodRejected(RunPodError):
    """RunPod rejected the request; sending it again will not help."""

    def __init__(self, message: str | None = None, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class RunPodStatus(StrEnum):
    IN_QUEUE = "IN_QUEUE"
    """Waiting for a worker."""
    IN_PROGRESS = "IN_PROGRESS"
    """A worker runs the handler; `output` holds the last progress update."""
    COMPLETED = "COMPLETED"
    """The handler returned; `output` holds its result."""
    FAILED = "FAILED"
    """The handler raised; `error` says why."""
    CANCELLED = "CANCELLED"
    """Cancelled through `/cancel`."""
    TIMED_OUT = "TIMED_OUT"
    """Expired in the queue, or ran past the execution timeout."""

    @property
    def is_terminal(self) -> bool:
        return self not in {RunPodStatus.IN_QUEUE, RunPodStatus.IN_PROGRESS}


# RunPod's job-state page names the running state RUNNING; `/status` says IN_PROGRESS.
_STATUS_ALIASES = {"RUNNING": RunPodStatus.IN_PROGRESS}


@dataclass(frozen=True, kw_only=True)
class RunPodJob:
    """One answer of `/run`, `/status` or `/cancel` (or a webhook body)."""

    id: str
    status: RunPodStatus
    output: Any = None
    error: str | None = None
    delay_time_ms: int | None = None
    execution_time_ms: int | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunPodJob:
        """Parse RunPod's JSON; raises RunPodError when it is not a job."""
        if not isinstance(data, Mapping):
            raise RunPodError(f"RunPod job is not an object: {type(data).__name__}")
        job_id, raw_status = data.get("id"), str(data.get("status"))
        if not isinstance(job_id, str) or not job_id:
            raise RunPodError("RunPod job has no id")
        try:
            status = _STATUS_ALIASES.get(raw_status) or RunPodStatus(raw_status)
        except ValueError:
            raise RunPodError(f"unknown RunPod status {raw_status!r}") from None
        error = data.get("error")
        if error is not None and not isinstance(error, str):
            # Keep structured errors as the JSON text the RunPod SDK would send.
            error = json.dumps(error)
        return cls(
            id=job_id,
            status=status,
            output=data.get("output"),
            error=error,
            delay_time_ms=_milliseconds(data.get("delayTime")),
            execution_time_ms=_milliseconds(data.get("executionTime")),
        )


def _milliseconds(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class RequestGate(Protocol):
    """Paces the client's requests per route (`gql.tracking.budget`)."""

    def admit(
        self, route: str, priority: int, order: float | None
    ) -> AbstractAsyncContextManager[None]:
        """Wait until a request on `route` may go out; held while it is in flight.
        Requests of one priority go in `order` (arrival when None)."""

    def throttled(self, route: str, retry_after: float | None) -> None:
        """RunPod answered 429 on `route` (with `Retry-After`, in seconds, if given)."""


def make_http_client(
    *, connect_timeout: float = 5.0, read_timeout: float = 10.0, max_connections: int = 50
) -> aiohttp.ClientSession:
    """The pooled session shared by every RunPod call (made inside the running event
    loop); the app closes it on shutdown. Keep-alive connections are reused."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=max_connections),
        timeout=aiohttp.ClientTimeout(sock_connect=connect_timeout, sock_read=read_timeout),
    )


def _should_retry(error: Exception) -> bool | float:
    """stamina hook: retry only RunPodUnavailable, after Retry-After when RunPod gave one."""
    if not isinstance(error, RunPodUnavailable) or isinstance(error, RunPodThrottled):
        return False
    return True if error.retry_after is None else error.retry_after


class RunPodClient:
    """The operations of one endpoint; `endpoint_url` is its base, ending in the endpoint id."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        endpoint_url: str,
        api_key: str | None = None,
        *,
        attempts: int = 4,
        retry_timeout: float = 15.0,
        wait_initial: float = 0.2,
        wait_max: float = 3.0,
        on_unavailable: Callable[[], None] | None = None,
        on_response: Callable[[str, str, float], None] | None = None,
        gate: RequestGate | None = None,
    ) -> None:
        self._http = http
        self._gate = gate
        self._on_unavailable = on_unavailable
        self._on_response = on_response
        self._base_url = endpoint_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._wait_max = wait_max
        self._retrying = functools.partial(
            stamina.retry_context,
            on=_should_retry,
            attempts=attempts,
            timeout=retry_timeout,
            wait_initial=wait_initial,
            wait_max=wait_max,
            wait_jitter=wait_initial,  # jitter on the scale of the first wait
        )

    async def run(
        self,
        job_input: Mapping[str, Any],
        *,
        webhook: str | None = None,
        policy: Mapping[str, Any] | None = None,
        priority: int = 0,
        order: float | None = None,
    ) -> RunPodJob:
        """Queue a job; RunPod POSTs its final `/status` JSON to `webhook` when given.
        `policy` is RunPod's execution policy (`executionTimeout`, `ttl`, in ms);
        `order` places it among other submissions waiting for the gate."""
        body: dict[str, Any] = {"input": dict(job_input)}
        if webhook:
            body["webhook"] = webhook
        if policy:
            body["policy"] = dict(policy)
        return RunPodJob.from_json(
            await self._request("POST", "/run", "run", body=body, priority=priority, order=order)
        )

    async def status(self, runpod_id: str, *, priority: int = 0) -> RunPodJob:
        path = f"/status/{quote(runpod_id, safe='')}"
        return RunPodJob.from_json(
            await self._request("GET", path, "status", runpod_id, priority=priority)
        )

    async def cancel(self, runpod_id: str, *, priority: int = 0) -> RunPodJob:
        path = f"/cancel/{quote(runpod_id, safe='')}"
        return RunPodJob.from_json(
            await self._request("POST", path, "cancel", runpod_id, priority=priority)
        )

    async def health(self, *, priority: int = 0) -> dict[str, Any]:
        """Job and worker counts of the endpoint."""
        data = await self._request("GET", "/health", "health", priority=priority)
        if not isinstance(data, dict):
            raise RunPodError("RunPod health is not an object")
        return data

    async def _request(
        self,
        method: str,
        path: str,
        action: str,
        runpod_id: str | None = None,
        *,
        body: Mapping[str, Any] | None = None,
        priority: int = 0,
        order: float | None = None,
    ) -> Any:
        extra: dict[str, Any] = {"action": action, "runpod_id": runpod_id}
        send = functools.partial(
            self._attempt, method, path, action, runpod_id, body, priority=priority, order=order
        )
        try:
            # Nearly every request succeeds at once, and setting up stamina's retry
            # loop costs more CPU than aiohttp's request: it starts at the first
            # failure, which it is handed as its own first attempt, so its waits,
            # Retry-After and attempt count apply as if it had made that one too.
            try:
                return await send()
            except RunPodUnavailable as error:
                self._failed_attempt(error, 1, extra)
                first_failure = error
            async for attempt in self._retrying():
                with attempt:
                    if attempt.num == 1:
                        raise first_failure
                    try:
                        return await send()
                    except RunPodUnavailable as error:
                        self._failed_attempt(error, attempt.num, extra)
                        raise
        except RunPodThrottled:
            raise  # the gate has heard of it and paces the route
        except RunPodUnavailable:
            logger.error("RunPod unavailable after retries", extra=extra)
            raise
        except RunPodRejected as error:
            logger.error("RunPod rejected the request", extra={**extra, "reason": str(error)})
            raise
        raise AssertionError("stamina ends with a result or an exception")

    def _failed_attempt(
        self, error: RunPodUnavailable, attempt: int, extra: Mapping[str, Any]
    ) -> None:
        if isinstance(error, RunPodThrottled):
            # Not retried into the limit: the gate slows the route down instead.
            assert self._gate is not None
            self._gate.throttled(str(extra["action"]), error.retry_after)
            logger.info(
                "RunPod throttled the request",
                extra={**extra, "retry_after_s": error.retry_after},
            )
            raise error
        if self._on_unavailable is not None:
            self._on_unavailable()
        logger.warning(
            "RunPod request failed", extra={**extra, "attempt": attempt, "reason": str(error)}
        )

    async def _attempt(
        self,
        method: str,
        path: str,
        action: str,
        runpod_id: str | None,
        body: Mapping[str, Any] | None,
        *,
        priority: int,
        order: float | None,
    ) -> Any:
        """One attempt, through the gate, reported to `on_response` as (action,
        outcome, seconds)."""
        if self._gate is None:
            return await self._timed(method, path, action, runpod_id, body)
        async with self._gate.admit(action, priority, order):
            return await self._timed(method, path, action, runpod_id, body)

    async def _timed(
        self,
        method: str,
        path: str,
        action: str,
        runpod_id: str | None,
        body: Mapping[str, Any] | None,
    ) -> Any:
        if self._on_response is None:
            return await self._send(method, path, runpod_id, body)
        started = time.perf_counter()
        outcome = "ok"
        try:
            return await self._send(method, path, runpod_id, body)
        except RunPodError as error:
            outcome = _OUTCOMES.get(type(error), "invalid")
            raise
        finally:
            self._on_response(action, outcome, time.perf_counter() - started)

    async def _send(
        self, method: str, path: str, runpod_id: str | None, body: Mapping[str, Any] | None
    ) -> Any:
        what = f"{method} {path}"
        try:
            async with self._http.request(
                method, self._base_url + path, json=body, headers=self._headers
            ) as response:
                code, retry_after_header = response.status, response.headers.get("Retry-After")
                content = await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:  # connect/read errors, timeouts
            raise RunPodUnavailable(f"{what}: {_transport_failure(error)}") from error
        if code == 429 and self._gate is not None:
            # The gate waits as long as RunPod says, however long that is.
            retry_after = _retry_after(retry_after_header, cap=math.inf)
            raise RunPodThrottled(f"{what}: HTTP 429", retry_after=retry_after)
        if code in _RETRYABLE_STATUS_CODES or code >= 500:
            retry_after = _retry_after(retry_after_header, cap=self._wait_max)
            raise RunPodUnavailable(f"{what}: HTTP {code}", retry_after=retry_after)
        if code == 404 and runpod_id is not None:
            raise RunPodJobNotFound(f"RunPod job {runpod_id!r} not found")
        if code >= 400:
            text = content.decode(errors="replace")
            excerpt = " ".join(text.split())[:_BODY_EXCERPT]
            raise RunPodRejected(f"{what}: HTTP {code}: {excerpt}", status_code=code)
        try:
            return json.loads(content)
        except ValueError:
            raise RunPodError(f"{what}: answer is not JSON") from None


_OUTCOMES: dict[type[RunPodError], str] = {
    RunPodThrottled: "throttled",
    RunPodUnavailable: "unavailable",
    RunPodJobNotFound: "not_found",
    RunPodRejected: "rejected",
}


def _transport_failure(error: Exception) -> str:
    if isinstance(error, TimeoutError):  # aiohttp's read and connect timeouts included
        return "timed out"
    if isinstance(error, aiohttp.ClientConnectorError):
        return "cannot connect"
    if isinstance(error, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return "connection dropped"
    return type(error).__name__


def _retry_after(header: str | None, *, cap: float) -> float | None:
    """Retry-After in seconds, capped; absent, or an HTTP date, counts as none."""
    try:
        seconds = float(header) if header is not None else math.nan
    except ValueError:
        return None
    return None if math.isnan(seconds) else min(max(seconds, 0.0), cap)
