"""`export-gql serve`: the API under uvicorn, as one process or several.

With `--workers N`, N API processes share one port and act as one service:
uvicorn's supervisor starts the processes, shares the listening socket between
them and restarts any that dies. They need PostgreSQL: it carries the change
feed and the job leases that make them one service (SQLite has one writer and no
feed). With no RUNPOD_ENDPOINT_URL, one local worker (`export-gql worker`) runs
beside them and they all send it their exports, as they would a RunPod endpoint.
Their metrics are written to a shared folder, so `/metrics` on any of them
reports all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import httpx
import uvicorn
from fastapi import FastAPI

from gql.config.errors import StartupError
from gql.config.settings import Settings
from gql.observability.metrics import MULTIPROCESS_DIR_ENV
from gql.startup.database_wait import wait_for_database
from gql.startup.process import server_options, tune_garbage_collector

logger = logging.getLogger(__name__)

SQLITE_REFUSED = (
    "serve --workers needs PostgreSQL (DATABASE_URL=postgresql://...): "
    "SQLite allows one writer and has no change feed between processes"
)
LOCAL_WORKER_START_TIMEOUT_S = 60.0


def serve(settings: Settings, *, workers: int = 1) -> None:
    """Wait for the database, then serve until interrupted."""
    if workers > 1:
        check_workers_database(settings)
    asyncio.run(wait_for_database(settings.database_url, settings.database_connect_timeout_s))
    if workers > 1:
        serve_workers(settings, workers)
        return
    from gql.app import create_app

    app = create_app(settings)
    tune_garbage_collector()
    uvicorn.run(app, **server_options(settings))


def check_workers_database(settings: Settings) -> None:
    if settings.database_url.startswith("sqlite"):
        raise StartupError(SQLITE_REFUSED)


def serve_workers(settings: Settings, workers: int) -> None:
    """Run `workers` API processes until interrupted."""
    check_workers_database(settings)
    # The processes read their settings from the environment, as `serve` would.
    os.environ.update(HOST=settings.host, PORT=str(settings.port))
    with contextlib.ExitStack() as stack:
        if settings.embeds_local_worker:
            endpoint_url, api_key = stack.enter_context(_shared_local_worker())
            os.environ.update(RUNPOD_ENDPOINT_URL=endpoint_url, RUNPOD_API_KEY=api_key)
            # The local worker calls the processes' webhooks over loopback.
            os.environ.setdefault("PUBLIC_URL", f"http://127.0.0.1:{settings.port}")
        if not os.environ.get(MULTIPROCESS_DIR_ENV):
            os.environ[MULTIPROCESS_DIR_ENV] = stack.enter_context(_metrics_folder())
        uvicorn.run(
            "gql.serve:app_from_environment",
            factory=True,
            workers=workers,
            **server_options(settings),
        )


def app_from_environment() -> FastAPI:
    """One worker process's app (uvicorn calls this in each of them)."""
    from gql.app import create_app
    from gql.observability.logs import configure_logging

    settings = Settings()
    configure_logging(log_format=settings.log_format)
    app = create_app(settings)
    tune_garbage_collector()
    return app


@contextlib.contextmanager
def _metrics_folder() -> Iterator[str]:
    folder = tempfile.mkdtemp(prefix="export-gql-metrics-")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _shared_local_worker() -> Iterator[tuple[str, str]]:
    """`export-gql worker` on a free loopback port; yields its URL and API key."""
    port = _free_port()
    api_key = secrets.token_urlsafe(32)
    process = subprocess.Popen(
        [sys.executable, "-m", "gql.cli", "worker", "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, "RUNPOD_API_KEY": api_key},
    )
    url = f"http://127.0.0.1:{port}/v2/local"
    try:
        _wait_until_healthy(process, url, api_key)
        logger.info(
            "no RUNPOD_ENDPOINT_URL set; exports run on the shared local worker at %s",
            url,
            extra={"action": "startup"},
        )
        yield url, api_key
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_healthy(process: subprocess.Popen[bytes], url: str, api_key: str) -> None:
    deadline = time.monotonic() + LOCAL_WORKER_START_TIMEOUT_S
    headers = {"Authorization": f"Bearer {api_key}"}
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the local worker exited at start-up (code {process.returncode})")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/health", headers=headers, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError("the local worker did not start")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
