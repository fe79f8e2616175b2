"""Real processes for the fault suite: the fake RunPod endpoint and `export-gql serve`."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.queries import GET_JOB, WATCH_JOB
from tests.servers.runpod_control import RunPodControl
from tests.servers.runpod_fake import RunPodServerProcess
from tests.support.api_process import ApiProcess
from tests.support.app_server import free_port
from tests.support.graphql import GraphQLHTTP, GraphQLWebSocket
from tests.support.waiting import eventually

StartServer = Callable[..., ApiProcess]


@pytest.fixture(scope="module")
def runpod_process() -> Iterator[RunPodServerProcess]:
    """One fake RunPod process per module (manual jobs); `control` resets it per test."""
    with RunPodServerProcess() as process:
        yield process


@pytest.fixture
def control(runpod_process: RunPodServerProcess) -> RunPodControl:
    assert runpod_process.control is not None
    runpod_process.control.reset()
    return runpod_process.control


@pytest.fixture
def start_server(runpod_process: RunPodServerProcess, tmp_path: Path) -> Iterator[StartServer]:
    """Start `export-gql serve` on SQLite in `tmp_path`.

    Keyword arguments are env values; `webhooks=True` sets PUBLIC_URL to the server
    itself, so each `/run` carries a webhook URL the fake RunPod can call.
    """
    started: list[ApiProcess] = []

    def start(*, webhooks: bool = False, **env: str) -> ApiProcess:
        port = free_port()
        values = {
            "DATA_DIR": str(tmp_path / "data"),
            "RUNPOD_ENDPOINT_URL": runpod_process.url,
            "POLL_INTERVAL_S": "0.2",
            **({"PUBLIC_URL": f"http://127.0.0.1:{port}"} if webhooks else {}),
            **env,
        }
        server = ApiProcess(values, port=port).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


async def job_of(client: GraphQLHTTP, job_id: str) -> dict[str, Any]:
    job = (await client.execute(GET_JOB, {"id": job_id}))["exportJob"]
    assert job is not None
    return dict(job)


async def wait_for_status(
    client: GraphQLHTTP, job_id: str, status: str, *, timeout: float = 30.0
) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        job = await job_of(client, job_id)
        return job if job["status"] == status else None

    return await eventually(reached, timeout=timeout)


async def runs_for(control: RunPodControl, job_id: str) -> list[str]:
    """RunPod ids of every `/run` the fake accepted for our job, oldest first."""
    runs = await asyncio.to_thread(control.runs)
    return [run.id for run in runs if run.input["job_id"] == job_id]


async def first_state_on_subscribing(server: ApiProcess, job_id: str) -> dict[str, Any]:
    """What a client that (re)subscribes to the job is sent first."""
    socket = await GraphQLWebSocket.connect(server.ws_url)
    try:
        first = (await anext(socket.subscribe(WATCH_JOB, {"id": job_id})))["exportJob"]
    finally:
        await socket.close()
    assert isinstance(first, dict)
    return first


def read_only(server: ApiProcess) -> sqlite3.Connection:
    """The server's SQLite database, opened read-only from the test."""
    path = server.settings.database_url.removeprefix("sqlite:///")
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
