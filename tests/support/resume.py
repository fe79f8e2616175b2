"""Resumable streams: the subscriptions that take `since`, and reading them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx

from tests.servers.runpod_control import RunPodControl
from tests.support.exports import runs_for, start_overlay, wait_for_status
from tests.support.graphql import GraphQLHTTP
from tests.support.http_streams import Frame, HTTPSubscription
from tests.support.waiting import eventually

RESUME_JOBS = """
subscription Resume($since: String, $filter: ExportJobFilter) {
  exportJobs(since: $since, filter: $filter) { id status progress changeCursor }
}
"""

RESUME_JOB = """
subscription ResumeOne($id: ID!, $since: String) {
  exportJob(id: $id, since: $since) { id status progress changeCursor }
}
"""

JOB_CURSOR = "query Cursor($id: ID!) { exportJob(id: $id) { changeCursor } }"

# Jobs once they run: waiting jobs' queue positions are refreshed, running ones' are not.
RUNNING = {"status": ["PROCESSING", "COMPLETE"]}

Change = tuple[str, str, int]
"""(job id, status, progress)"""


async def queued_jobs(
    client: GraphQLHTTP, control: RunPodControl, project_id: int, count: int
) -> list[tuple[str, str]]:
    """`count` exports RunPod has queued: (job id, RunPod id) each."""
    jobs = []
    for _ in range(count):
        job_id = await start_overlay(client, project_id)
        runpod_id = (await eventually(lambda j=job_id: runs_for(control, j)))[0]
        await wait_for_status(client, job_id, "QUEUED")
        jobs.append((job_id, runpod_id))
    return jobs


async def cursor_of(client: GraphQLHTTP, job_id: str) -> str:
    return str((await client.execute(JOB_CURSOR, {"id": job_id}))["exportJob"]["changeCursor"])


async def at_progress(client: GraphQLHTTP, job_id: str, progress: int) -> None:
    """Wait until the API has recorded the job at `progress`."""

    async def reached() -> bool:
        job = (await client.execute(f'{{ exportJob(id: "{job_id}") {{ progress }} }}'))["exportJob"]
        return bool(job["progress"] == progress)

    await eventually(reached, timeout=30)


async def next_changes(
    stream: AsyncIterator[dict[str, Any]], count: int
) -> tuple[list[Change], list[str]]:
    """The stream's next `count` jobs, and their cursors."""
    changes, cursors = [], []
    for _ in range(count):
        job = (await asyncio.wait_for(anext(stream), 20))["exportJobs"]
        changes.append((job["id"], job["status"], job["progress"]))
        cursors.append(job["changeCursor"])
    return changes, cursors


async def next_events(
    frames: AsyncIterator[Frame], count: int
) -> tuple[list[Change], list[str | None]]:
    """The next `count` SSE results, and their event ids (each its payload's cursor)."""
    changes, ids = [], []
    while len(changes) < count:
        frame = await asyncio.wait_for(anext(frames), 20)
        if frame.kind != "next":
            continue
        assert frame.payload is not None
        job = frame.payload["data"]["exportJobs"]
        assert frame.id == job["changeCursor"]
        changes.append((job["id"], job["status"], job["progress"]))
        ids.append(frame.id)
    return changes, ids


async def hang_up_after_first_change(
    http: httpx.AsyncClient,
    graphql_url: str,
    client: GraphQLHTTP,
    control: RunPodControl,
    jobs: list[tuple[str, str]],
) -> tuple[dict[str, Any], str]:
    """Subscribe over SSE to running jobs from the newest job's cursor, move the first
    job to 10 % and hang up after its event: the request's variables and the event id."""
    (first_job, first_run), (newest_job, _) = jobs[0], jobs[-1]
    variables = {"since": await cursor_of(client, newest_job), "filter": RUNNING}
    stream = HTTPSubscription(http, graphql_url, "sse", RESUME_JOBS, variables)
    control.progress(first_run, 10)
    seen, ids = await next_events(stream.frames(), 1)
    await stream.close()
    assert seen == [(first_job, "PROCESSING", 10)] and ids[0] is not None
    return variables, ids[0]
