"""Prometheus metrics for operators, served at `GET /metrics`.

One process keeps them in memory. With `PROMETHEUS_MULTIPROC_DIR` set (`serve
--workers` sets it), each worker writes its values to files in that folder and
`/metrics`, whichever worker answers, sums the live workers' gauges and every
worker's counters and histograms.

Gauges are sampled from the objects they describe (each second, and on every
scrape); counters and histograms are updated where things happen.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

SUBSCRIPTIONS = Gauge(
    "export_gql_subscriptions",
    "Subscription operations open (websocket and HTTP streams).",
    multiprocess_mode="livesum",
)
SUBSCRIPTION_GROUPS = Gauge(
    "export_gql_subscription_groups",
    "Subscription executions, each shared by identical subscriptions of one user.",
    multiprocess_mode="livesum",
)
JOBS_FOLLOWED = Gauge(
    "export_gql_jobs_followed",
    "Jobs this process follows on RunPod (submits, polls, cancels).",
    multiprocess_mode="livesum",
)
LEASES_HELD = Gauge(
    "export_gql_leases_held",
    "Job leases held: the jobs this process is the follower of.",
    multiprocess_mode="livesum",
)
FEED_CONNECTED = Gauge(
    "export_gql_feed_connected",
    "1 while the change feed from the other processes is connected.",
    multiprocess_mode="livemin",
)
FEED_RECONNECTS = Counter(
    "export_gql_feed_reconnects", "Times the change feed's connection was re-established."
)
FEED_LAG_SECONDS = Histogram(
    "export_gql_feed_lag_seconds",
    "From a change being sent by one process to its arrival at another.",
    buckets=_LATENCY_BUCKETS,
)
PUSH_LATENCY_SECONDS = Histogram(
    "export_gql_push_latency_seconds",
    "From a job change being written to its frames being handed to the subscribers' sockets.",
    buckets=_LATENCY_BUCKETS,
)
RUNPOD_REQUESTS = Counter(
    "export_gql_runpod_requests",
    "RunPod HTTP requests, each attempt, by route and outcome.",
    ["route", "outcome"],
)
RUNPOD_REQUEST_SECONDS = Histogram(
    "export_gql_runpod_request_seconds",
    "RunPod HTTP request latency, each attempt, by route.",
    ["route"],
    buckets=_LATENCY_BUCKETS,
)
JOB_TRANSITIONS = Counter(
    "export_gql_job_transitions",
    "Job status changes, by export kind and the status reached.",
    ["kind", "status"],
)
WEBHOOKS = Counter("export_gql_webhooks", "RunPod webhook calls received, by outcome.", ["outcome"])
JOBS_WATCHED = Gauge(
    "export_gql_jobs_watched",
    "Jobs this process follows that a subscriber somewhere watches.",
    multiprocess_mode="livesum",
)
RUNPOD_BUDGET_LIMIT = Gauge(
    "export_gql_runpod_budget_limit",
    "Requests per second this process may send to a RunPod route (its share of the budget).",
    ["route"],
    multiprocess_mode="livesum",
)
RUNPOD_BUDGET_RATE = Gauge(
    "export_gql_runpod_budget_rate",
    "Requests per second this process allows itself now; below the limit after a 429.",
    ["route"],
    multiprocess_mode="livesum",
)
RUNPOD_BUDGET_WAITING = Gauge(
    "export_gql_runpod_budget_waiting",
    "Requests waiting for the route's budget (nonzero: the budget binds).",
    ["route"],
    multiprocess_mode="livesum",
)
RUNPOD_BUDGET_WAIT_SECONDS = Histogram(
    "export_gql_runpod_budget_wait_seconds",
    "How long requests waited for the route's budget, by priority.",
    ["route", "priority"],
    buckets=_LATENCY_BUCKETS,
)
RUNPOD_ENDPOINT_JOBS = Gauge(
    "export_gql_runpod_endpoint_jobs",
    "Jobs RunPod's /health counts on the endpoint (all its clients'), by state.",
    ["state"],
    multiprocess_mode="livemax",
)
RUNPOD_ENDPOINT_WORKERS = Gauge(
    "export_gql_runpod_endpoint_workers",
    "The endpoint's workers as RunPod's /health counts them, by state.",
    ["state"],
    multiprocess_mode="livemax",
)

_DELIVERY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 600.0, 3600.0)
WEBHOOK_DELIVERIES = Counter(
    "export_gql_webhook_deliveries",
    "Outbound webhook events finished, by outcome (delivered, abandoned).",
    ["outcome"],
)
WEBHOOK_ATTEMPTS = Counter(
    "export_gql_webhook_attempts",
    "Outbound webhook requests, each attempt, by outcome "
    "(ok, redirect, rejected, gone, server_error, timeout, unreachable).",
    ["outcome"],
)
WEBHOOK_OLDEST_UNDELIVERED = Gauge(
    "export_gql_webhook_oldest_undelivered_seconds",
    "Age of the oldest outbound webhook event not yet delivered nor abandoned (0: none).",
    multiprocess_mode="livemax",
)
WEBHOOK_DELIVERY_SECONDS = Histogram(
    "export_gql_webhook_delivery_seconds",
    "From an event being written with its job change to the receiver's 2xx.",
    buckets=_DELIVERY_BUCKETS,
)
WEBHOOK_REQUEST_SECONDS = Histogram(
    "export_gql_webhook_request_seconds",
    "Outbound webhook request latency, each attempt.",
    buckets=_LATENCY_BUCKETS,
)


class GaugeSampler:
    """Sets each gauge from a function of the live object it describes."""

    def __init__(self, sources: Mapping[Gauge, Callable[[], float]], *, every_s: float = 1.0):
        self._sources = sources
        self._every_s = every_s

    def sample(self) -> None:
        for gauge, source in self._sources.items():
            gauge.set(source())

    async def run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self._every_s)


def observe_runpod_request(route: str, outcome: str, seconds: float) -> None:
    RUNPOD_REQUESTS.labels(route, outcome).inc()
    RUNPOD_REQUEST_SECONDS.labels(route).observe(seconds)


def render() -> tuple[bytes, str]:
    """The exposition text and its content type."""
    folder = os.environ.get(MULTIPROCESS_DIR_ENV)
    if not folder:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    _forget_dead_processes(Path(folder))
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST


_PID_OF_FILE = re.compile(r"_(\d+)\.db$")


def _forget_dead_processes(folder: Path) -> None:
    """Drop the live gauges of workers that died without saying so (`kill -9`)."""
    for pid in {int(m[1]) for f in folder.glob("*.db") if (m := _PID_OF_FILE.search(f.name))}:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            mark_process_dead(pid, str(folder))  # type: ignore[no-untyped-call]
        except PermissionError:
            pass  # alive, another user's
