"""The process's long-lived parts, made in the app's lifespan, as the HTTP layer reaches them."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import ASGIApp

from clients.runpod import RunPodClient
from clients.storage import ObjectStorage
from gql.cluster.coordinator import Coordinator
from gql.cluster.feed import ChangeFeed
from gql.context import Services
from gql.db.database import Database
from gql.jobs.repository import JobRepository
from gql.observability.metrics import GaugeSampler
from gql.subscriptions.hub import SubscriptionHub
from gql.tracking.tracker import JobTracker


@dataclass(frozen=True, kw_only=True)
class Runtime:
    services: Services
    """What resolvers use (the GraphQL context holds it)."""
    database: Database
    jobs: JobRepository
    tracker: JobTracker
    coordinator: Coordinator
    feed: ChangeFeed
    runpod: RunPodClient | None
    """None when no endpoint is configured (and no local worker embedded)."""
    storage: ObjectStorage
    hub: SubscriptionHub
    gauges: GaugeSampler


def runtime_of(app: ASGIApp) -> Runtime:
    """The runtime the app's lifespan set up (`create_app`)."""
    runtime = getattr(getattr(app, "state", None), "runtime", None)
    if not isinstance(runtime, Runtime):
        raise RuntimeError("the app has not started: no runtime")
    return runtime
