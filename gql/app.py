"""`create_app(settings)`: wiring and lifespan only.

Everything long-lived (database, HTTP client, tracker) is made here when the
app starts and closed here when it stops.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from starlette.routing import Route

from clients.runpod import RunPodClient, make_http_client
from clients.storage import open_storage
from gql.assets import AssetRepository
from gql.auth import Authenticator
from gql.context import Services
from gql.db import Database
from gql.graphql_endpoint import GraphQLEndpoint, WebSocketShortcut
from gql.jobs.broker import JobBroker
from gql.jobs.circuit import CIRCUIT_MAX_S, EndpointCircuit
from gql.jobs.repository import JobRepository
from gql.jobs.service import JobService
from gql.jobs.tracker import JobTracker
from gql.jobs.transitions import JobTransitions
from gql.json_body import JsonBodyGuard
from gql.local_worker import EmbeddedWorker
from gql.panel import mount_panel
from gql.routes import router as http_routes
from gql.schema.schema import build_schema
from gql.settings import Settings

logger = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = Database(settings.database_url)
        await database.connect()
        http = make_http_client()
        local_worker = EmbeddedWorker(settings) if settings.embeds_local_worker else None
        endpoint_url: str | None
        api_key: str | None
        if local_worker is not None:
            await local_worker.start()
            endpoint_url, api_key = local_worker.url, local_worker.api_key
            logger.info(
                "no RUNPOD_ENDPOINT_URL set; exports run on the embedded local worker at %s",
                endpoint_url,
                extra={"action": "startup"},
            )
        else:
            endpoint_url, api_key = settings.runpod_endpoint_url, settings.runpod_api_key
        # Shared by the client (every failed attempt) and the tracker (every request).
        circuit = EndpointCircuit(base_s=settings.poll_interval_s, cap_s=CIRCUIT_MAX_S)
        runpod = (
            RunPodClient(
                http,
                endpoint_url,
                api_key,
                attempts=settings.runpod_retry_attempts,
                on_unavailable=circuit.trip,
            )
            if endpoint_url
            else None
        )
        if runpod is None:
            logger.warning(
                "no RunPod endpoint configured and LOCAL_WORKER=false; "
                "start mutations will be refused",
                extra={"action": "startup"},
            )
        storage = open_storage(
            settings.storage,
            signing_key=settings.local_signing_key(),
            base_url=settings.base_url,
        )
        repo = JobRepository(database)
        assets = AssetRepository(database)
        broker = JobBroker()
        transitions = JobTransitions(repo, assets, broker)
        tracker = JobTracker(
            repo,
            transitions,
            runpod,
            poll_interval_s=settings.poll_interval_s,
            webhook_base_url=settings.webhook_base_url,
            max_concurrency=settings.runpod_max_concurrency,
            circuit=circuit,
        )
        authenticator = Authenticator.from_settings(settings)
        app.state.services = Services(
            jobs=JobService(
                repo=repo,
                assets=assets,
                transitions=transitions,
                tracker=tracker,
                storage=storage,
                runpod_configured=runpod is not None,
                download_url_ttl_s=settings.download_url_ttl_s,
            ),
            broker=broker,
            authenticator=authenticator,
            assets=assets,
        )
        app.state.database = database
        app.state.job_repository = repo
        app.state.tracker = tracker
        app.state.runpod = runpod
        app.state.storage = storage
        await tracker.start()
        try:
            yield
        finally:
            await tracker.stop()
            if local_worker is not None:
                await local_worker.stop()
            await http.aclose()
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
        stream_heartbeat_s=settings.http_stream_heartbeat_s,
    )
    app.state.subscription_hub = graphql.hub
    app.router.routes.append(Route("/graphql", JsonBodyGuard(graphql), methods=["GET", "POST"]))
    app.add_middleware(WebSocketShortcut, endpoint=graphql, path="/graphql")
    app.include_router(http_routes)
    mount_panel(app)
    return app
