"""Starting an export through the API, reading its state and waiting for a status."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.servers.runpod_control import RunPodControl
from tests.servers.runpod_fake import RunningRunPodServer
from tests.support.graphql import GraphQLHTTP
from tests.support.queries import GET_JOB, START_OVERLAY, overlay_input
from tests.support.waiting import eventually


async def start_overlay(client: GraphQLHTTP, project_id: int, **extra: object) -> str:
    data = await client.execute(START_OVERLAY, {"input": overlay_input(project_id, **extra)})
    assert data["startOverlayExport"]["userErrors"] == []
    return str(data["startOverlayExport"]["job"]["id"])


async def job_state(client: GraphQLHTTP, job_id: str) -> dict[str, Any]:
    job = (await client.execute(GET_JOB, {"id": job_id}))["exportJob"]
    assert job is not None
    return dict(job)


async def wait_for_status(
    client: GraphQLHTTP, job_id: str, status: str, *, timeout: float = 30.0
) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        job = await job_state(client, job_id)
        return job if job["status"] == status else None

    return await eventually(reached, timeout=timeout)


async def runs_for(control: RunPodControl, job_id: str) -> list[str]:
    """RunPod ids of every `/run` the fake accepted for our job, oldest first."""
    runs = await asyncio.to_thread(control.runs)
    return [run.id for run in runs if run.input["job_id"] == job_id]


async def runpod_id_of(runpod: RunningRunPodServer, job_id: str) -> str:
    """The RunPod id of the job's first `/run`, once the fake has accepted it."""
    return (await eventually(lambda: runs_for(runpod.control, job_id)))[0]
