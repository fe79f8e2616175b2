"""Helpers for the fault suite's real `export-gql serve` processes (fixtures: tests/conftest.py)."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

from tests.api.queries import GET_JOB, WATCH_JOB
from tests.servers.runpod_control import RunPodControl
from tests.support.api_process import ApiProcess
from tests.support.graphql import GraphQLHTTP, GraphQLWebSocket
from tests.support.waiting import eventually


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
