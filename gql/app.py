"""`create_app(settings)`: wiring and lifespan only.

Everything long-lived (database, HTTP client, change feed, tracker, coordinator)
is made here when the app starts and closed here when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import aiohttp
from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route

from clients.runpod import RunPodClient, make_http_client
from clients.storage import open_storage
from gql.assets.repository import AssetRepository
from gql.auth.tokens import Authenticator
from gql.cluster.coordinator import Coordinator
from gql.cluster.feed import ChangeFeed, LocalFeed
from gql.cluster.pg_feed import PostgresFeed
from gql.cluster.registry import ProcessRegistry, new_process_id
from gql.cluster.watching import WatchRegistry
from gql.config.settings import Settings
from gql.context import Services
from gql.db.database import Database
from gql.graphql_schema import build_schema
from gql.http.graphql_endpoint import GraphQLEndpoint
from gql.http.json_body import JsonBodyGuard
from gql.http.lingering import LingeringClose
from gql.http.panel import mount_panel
from gql.http.request_size import RequestSizeLimit
from gql.http.routes import router as http_routes
from gql.http.shortcuts import Shortcuts
from gql.jobs.broker import JobBroker
from gql.jobs.quotas import StartQuota
from gql.jobs.repository import JobEvents, JobRepository
from gql.jobs.resume import JobStreams
from gql.jobs.service import JobService
from gql.jobs.transitions import JobTransitions
from gql.observability import metrics
from gql.runtime import Runtime
from gql.startup.local_worker import EmbeddedWorker
from gql.subscriptions.hub import SubscriptionHub
from gql.tracking.budget import RequestBudget, RouteLimit
from gql.tracking.circuit import CIRCUIT_MAX_S, EndpointCircuit
from gql.tracking.endpoint_health import EndpointHealth
from gql.tracking.policy import ExecutionPolicy
from gql.tracking.schedule import PollSchedule
from gql.tracking.steps import RunPodSteps
from gql.tracking.tracker import JobTracker
from gql.tracking.waiting_room import WaitingRoom
from gql.webhooks.setup import delivery_loop, outbox_writer

logger = logging.getLogger(__name__)

# Jobs taken over are polled soon, but spread over this long (at most one interval).
RESUME_SPREAD_S = 0.5


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = Database(settings.database_url)
        await database.connect()
        http = make_http_client(max_connections=settings.runpod_max_concurrency)
        local_worker = EmbeddedWorker(settings) if settings.embeds_local_worker else None
        if local_worker is not None:
            await local_worker.start()
        runpod = _RunPodAccess.build(settings, http, local_worker)
        storage = open_storage(
            settings.storage,
            signing_key=settings.local_signing_key(),
            base_url=settings.base_url,
        )
        webhook_events = outbox_writer(settings)
        jobs = _JobFollowing.build(settings, database, runpod, webhook_events)
        authenticator = Authenticator.from_settings(settings)
        services = Services(
            jobs=JobService(
                repo=jobs.repo,
                assets=jobs.assets,
                transitions=jobs.transitions,
                followers=jobs.coordinator,
                storage=storage,
                runpod_configured=runpod.client is not None,
                download_url_ttl_s=settings.download_url_ttl_s,
                quota=StartQuota(
                    max_active=settings.max_active_exports_per_user,
                    max_per_minute=settings.max_starts_per_minute_per_user,
                ),
                on_created=jobs.waiting.joined,
            ),
            streams=JobStreams(jobs.repo, jobs.broker),
            authenticator=authenticator,
            assets=jobs.assets,
            waiting=jobs.waiting,
        )
        runtime = Runtime(
            services=services,
            database=database,
            jobs=jobs.repo,
            tracker=jobs.tracker,
            coordinator=jobs.coordinator,
            feed=jobs.feed,
            runpod=runpod.client,
            storage=storage,
            hub=graphql.hub,
            gauges=jobs.gauges(graphql.hub),
        )
        app.state.runtime = runtime
        await jobs.start()
        deliveries = None
        if webhook_events is not None:
            # Started once this process is registered: its claims last while it is.
            deliveries = delivery_loop(
                settings,
                database,
                process_id=jobs.coordinator.process_id,
                download_url=lambda key: storage.presigned_url(key, settings.download_url_ttl_s),
            )
            webhook_events.on_written(deliveries.wake)
            await deliveries.start()
        sampling = asyncio.create_task(runtime.gauges.run(), name="gauges")
        try:
            yield
        finally:
            sampling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampling
            if deliveries is not None:
                await deliveries.stop()
            await jobs.stop()
            if local_worker is not None:
                await local_worker.stop()
            await http.close()
            await authenticator.aclose()
            await database.disconnect()

    app = FastAPI(
        title="export-gql",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    schema = build_schema(
        max_depth=settings.max_query_depth,
        max_aliases=settings.max_aliases,
        max_tokens=settings.max_query_tokens,
    )
    graphql = GraphQLEndpoint(
        schema,
        connection_init_timeout=timedelta(seconds=settings.ws_connection_init_timeout_s),
        max_connections_per_user=settings.max_connections_per_user,
        stream_heartbeat_s=settings.http_stream_heartbeat_s,
    )
    app.router.routes.append(Route("/graphql", JsonBodyGuard(graphql), methods=["GET", "POST"]))
    app.add_middleware(Shortcuts, graphql=graphql, graphql_path="/graphql")
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Accept"],
            max_age=600,
        )
    # Nothing reads a body before its size is known to be fine.
    app.add_middleware(RequestSizeLimit, max_bytes=settings.max_request_bytes)
    # Outermost of ours: every early answer, the 413 included, lingers.
    app.add_middleware(
        LingeringClose, max_bytes=settings.linger_max_bytes, max_s=settings.linger_max_s
    )
    app.include_router(http_routes)
    mount_panel(app)
    return app


@dataclass(frozen=True, kw_only=True)
class _RunPodAccess:
    """The client of the RunPod endpoint (or the embedded worker), the breaker its
    failures trip, and the budget its requests wait for."""

    client: RunPodClient | None
    circuit: EndpointCircuit
    budget: RequestBudget

    @classmethod
    def build(
        cls, settings: Settings, http: aiohttp.ClientSession, local_worker: EmbeddedWorker | None
    ) -> _RunPodAccess:
        endpoint_url: str | None
        api_key: str | None
        if local_worker is not None:
            endpoint_url, api_key = local_worker.url, local_worker.api_key
            logger.info(
                "no RUNPOD_ENDPOINT_URL set; exports run on the embedded local worker at %s",
                endpoint_url,
                extra={"action": "startup"},
            )
        else:
            endpoint_url, api_key = settings.runpod_endpoint_url, settings.runpod_api_key
        # Shared by the client (every failed attempt) and the steps (every request).
        circuit = EndpointCircuit(base_s=settings.poll_interval_s, cap_s=CIRCUIT_MAX_S)
        budget = request_budget(settings)
        if not endpoint_url:
            logger.warning(
                "no RunPod endpoint configured and LOCAL_WORKER=false; "
                "start mutations will be refused",
                extra={"action": "startup"},
            )
            return cls(client=None, circuit=circuit, budget=budget)
        client = RunPodClient(
            http,
            endpoint_url,
            api_key,
            attempts=settings.runpod_retry_attempts,
            on_unavailable=circuit.trip,
            on_response=metrics.observe_runpod_request,
            gate=budget,
        )
        return cls(client=client, circuit=circuit, budget=budget)


def request_budget(settings: Settings) -> RequestBudget:
    """RunPod's limits per route, as configured (defaults: RunPod's published table)."""
    window = settings.runpod_rate_window_s
    limits = {
        "run": RouteLimit(
            requests=settings.runpod_run_rate,
            window_s=window,
            concurrency=settings.runpod_run_concurrency,
        ),
        "status": RouteLimit(
            requests=settings.runpod_status_rate,
            window_s=window,
            concurrency=settings.runpod_status_concurrency,
        ),
        "cancel": RouteLimit(
            requests=settings.runpod_cancel_rate,
            window_s=window,
            concurrency=settings.runpod_cancel_concurrency,
        ),
    }
    return RequestBudget(limits, margin=settings.runpod_budget_margin)


@dataclass(frozen=True, kw_only=True)
class _JobFollowing:
    """The parts that record, follow and announce jobs, across processes."""

    repo: JobRepository
    assets: AssetRepository
    broker: JobBroker
    feed: ChangeFeed
    transitions: JobTransitions
    tracker: JobTracker
    coordinator: Coordinator
    watching: WatchRegistry
    budget: RequestBudget
    waiting: WaitingRoom

    @classmethod
    def build(
        cls,
        settings: Settings,
        database: Database,
        runpod: _RunPodAccess,
        events: JobEvents | None,
    ) -> _JobFollowing:
        process_id = new_process_id()
        lease_ttl_s = settings.job_lease_ttl_s
        repo = JobRepository(database, lease_owner=process_id, events=events)
        assets = AssetRepository(database)
        broker = JobBroker()
        # One process on SQLite; any number on PostgreSQL, which carries the feed.
        feed: ChangeFeed = (
            PostgresFeed(database.url, broker, repo, process_id)
            if database.dialect == "postgresql"
            else LocalFeed(broker)
        )
        transitions = JobTransitions(repo, assets, feed)
        watching = WatchRegistry(broker, feed)
        health = (
            None
            if runpod.client is None
            else EndpointHealth(
                database,
                runpod.client,
                process_id=process_id,
                period_s=settings.runpod_health_interval_s,
            )
        )
        steps = (
            None
            if runpod.client is None
            else RunPodSteps(
                runpod.client,
                transitions,
                poll_interval_s=settings.poll_interval_s,
                webhook_base_url=settings.webhook_base_url,
                circuit=runpod.circuit,
                policy=ExecutionPolicy(
                    base_s=settings.runpod_execution_timeout_base_s,
                    per_input_second_s=settings.runpod_execution_s_per_input_s,
                    floor_s=settings.runpod_execution_timeout_min_s,
                    ceiling_s=settings.runpod_execution_timeout_max_s,
                    job_ttl_s=settings.runpod_job_ttl_s,
                ),
            )
        )
        tracker = JobTracker(
            repo,
            steps,
            schedule=PollSchedule(
                interval_s=settings.poll_interval_s,
                unwatched_interval_s=settings.poll_interval_unwatched_s,
                watchers=watching,
                gate=health,
            ),
            budget=runpod.budget,
            health=health,
        )
        watching.on_first_watch(
            lambda job_id, user_id: tracker.watched_now(job_id=job_id, user_id=user_id)
        )
        waiting = WaitingRoom(
            repo,
            broker,
            figures=lambda: health.figures if health is not None and health.fresh else None,
            known_job=tracker.known_job,
            poll_interval_s=settings.poll_interval_s,
        )
        coordinator = Coordinator(
            repo=repo,
            registry=ProcessRegistry(database, process_id, ttl_s=lease_ttl_s),
            tracker=tracker,
            feed=feed,
            watching=watching,
            lease_ttl_s=lease_ttl_s,
            resume_spread_s=min(settings.poll_interval_s, RESUME_SPREAD_S),
        )
        return cls(
            repo=repo,
            assets=assets,
            broker=broker,
            feed=feed,
            transitions=transitions,
            tracker=tracker,
            coordinator=coordinator,
            watching=watching,
            budget=runpod.budget,
            waiting=waiting,
        )

    async def start(self) -> None:
        await self.tracker.start()
        await self.feed.start(self.coordinator)
        await self.watching.start()
        await self.waiting.start()
        await self.coordinator.start()
        logger.info(
            "following jobs",
            extra={
                "action": "startup",
                "process_id": self.coordinator.process_id,
                "feed": self.feed.health()["kind"],
            },
        )

    async def stop(self) -> None:
        # The coordinator gives its leases up through the feed, so the feed goes last.
        await self.watching.stop()
        await self.waiting.stop()
        await self.coordinator.stop()
        await self.feed.stop()

    def gauges(self, hub: SubscriptionHub) -> metrics.GaugeSampler:
        return metrics.GaugeSampler(
            {
                metrics.SUBSCRIPTIONS: lambda: hub.subscriber_count,
                metrics.SUBSCRIPTION_GROUPS: lambda: hub.group_count,
                metrics.JOBS_FOLLOWED: lambda: self.tracker.followed_count,
                metrics.JOBS_WATCHED: lambda: self.tracker.watched_count,
                metrics.LEASES_HELD: lambda: self.coordinator.leases_held,
                metrics.FEED_CONNECTED: lambda: 1 if self.feed.health()["ok"] else 0,
                **self.budget.gauges(),
                **self.tracker.endpoint_gauges(),
            }
        )
