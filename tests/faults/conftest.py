"""Real processes for the fault suite: the fake RunPod endpoint and `export-gql serve`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.queries import GET_JOB
from tests.servers.runpod_control import RunPodControl
from tests.servers.runpod_fake import RunPodServerProcess
from tests.support.api_process import ApiProcess
from tests.support.graphql import GraphQLHTTP
from tests.support.waiting import eventually

StartServer = Callable[..., ApiProcess]


@pytest.fixture
def runpod_process() -> Iterator[RunPodServerProcess]:
    with RunPodServerProcess() as process:
        yield process


@pytest.fixture
def control(runpod_process: RunPodServerProcess) -> RunPodControl:
    assert runpod_process.control is not None
    return runpod_process.control


@pytest.fixture
def start_server(runpod_process: RunPodServerProcess, tmp_path: Path) -> Iterator[StartServer]:
    """Start `export-gql serve` on SQLite in `tmp_path`; keyword arguments are env values."""
    started: list[ApiProcess] = []

    def start(**env: str) -> ApiProcess:
        values = {
            "DATA_DIR": str(tmp_path / "data"),
            "RUNPOD_ENDPOINT_URL": runpod_process.url,
            "POLL_INTERVAL_S": "0.2",
            **env,
        }
        server = ApiProcess(values).start()
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
    runs = await asyncio.to_thread(control.runs)
    return [run.id for run in runs if run.input["job_id"] == job_id]
