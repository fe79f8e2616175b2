"""`kill -9` the API at each stage of a job: after a restart every job ends in its true state.

RunPod has no way to look a job up by its input, so when the API dies after
RunPod accepted a `/run` but before the answer was stored, the restarted API
submits again and RunPod runs the export twice (the second run's id is the one
followed; the output key is the same, so the duplicate overwrites it with the
same video). The case below pins that documented limit down: two runs, one
followed, the job correct.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.api.queries import WATCH_JOB
from tests.api.test_tracking import start_overlay
from tests.faults.conftest import StartServer, job_of, runs_for, wait_for_status
from tests.servers.runpod_control import RunPodControl
from tests.servers.runpod_fake import RunPodServerProcess
from tests.support.api_process import ApiProcess
from tests.support.assets import seed_assets
from tests.support.graphql import GraphQLHTTP, GraphQLWebSocket
from tests.support.waiting import eventually

pytestmark = pytest.mark.faults


async def started_job(server: ApiProcess) -> tuple[GraphQLHTTP, str]:
    assets = await seed_assets(server.settings, "local")
    client = GraphQLHTTP(server.graphql_url)
    return client, await start_overlay(client, assets.project_id)


async def first_state_after_resubscribing(server: ApiProcess, job_id: str) -> dict[str, object]:
    socket = await GraphQLWebSocket.connect(server.ws_url)
    stream: AsyncIterator[dict[str, object]] = socket.subscribe(WATCH_JOB, {"id": job_id})
    first = (await anext(stream))["exportJob"]
    await socket.close()
    assert isinstance(first, dict)
    return first


async def test_killed_after_the_row_is_written_before_run(
    start_server: StartServer, runpod_process: RunPodServerProcess
) -> None:
    runpod_process.kill()  # RunPod unreachable: the job is recorded, not submitted
    server = start_server()
    client, job_id = await started_job(server)
    assert (await job_of(client, job_id))["status"] == "PENDING"

    server.kill()
    runpod_process.start()
    server.start()
    control = runpod_process.control
    assert control is not None

    (runpod_id,) = await eventually(lambda: runs_for(control, job_id))
    control.complete(runpod_id)
    await wait_for_status(client, job_id, "COMPLETE")
    assert await runs_for(control, job_id) == [runpod_id]
    assert (await first_state_after_resubscribing(server, job_id))["status"] == "COMPLETE"
    await client.aclose()


async def test_killed_while_run_is_in_flight_runs_twice_and_follows_the_second(
    start_server: StartServer, control: RunPodControl
) -> None:
    control.inject("late", route="run", delay=3)
    server = start_server()
    client, job_id = await started_job(server)
    await asyncio.sleep(0.5)  # the API's /run request is waiting on RunPod

    server.kill()
    # RunPod still accepts the request whose answer nobody will read.
    (lost,) = await eventually(lambda: runs_for(control, job_id))
    server.start()

    async def resubmitted() -> str | None:
        return next((run for run in await runs_for(control, job_id) if run != lost), None)

    followed = await eventually(resubmitted)
    control.complete(followed)
    await wait_for_status(client, job_id, "COMPLETE")
    assert sorted(await runs_for(control, job_id)) == sorted([lost, followed])
    await client.aclose()


async def test_killed_while_processing_resumes_and_resubscribers_get_the_current_state(
    start_server: StartServer, control: RunPodControl
) -> None:
    server = start_server()
    client, job_id = await started_job(server)
    (runpod_id,) = await eventually(lambda: runs_for(control, job_id))
    control.progress(runpod_id, 40, "encoding")
    await wait_for_status(client, job_id, "PROCESSING")

    server.kill()
    control.progress(runpod_id, 70, "muxing")
    server.start()

    async def at_seventy() -> bool:
        return (await job_of(client, job_id))["progress"] == 70

    await eventually(at_seventy)
    first = await first_state_after_resubscribing(server, job_id)
    assert (first["status"], first["progress"]) == ("PROCESSING", 70)
    control.complete(runpod_id)
    await wait_for_status(client, job_id, "COMPLETE")
    assert await runs_for(control, job_id) == [runpod_id]
    await client.aclose()


async def test_killed_after_runpod_completed_before_the_row_was_updated(
    start_server: StartServer, control: RunPodControl
) -> None:
    # A long interval and no webhooks: the API cannot learn of the completion in time.
    server = start_server(POLL_INTERVAL_S="60")
    client, job_id = await started_job(server)
    (runpod_id,) = await eventually(lambda: runs_for(control, job_id))
    await wait_for_status(client, job_id, "QUEUED")
    control.complete(runpod_id)
    await asyncio.sleep(0.3)
    assert (await job_of(client, job_id))["status"] == "QUEUED"

    server.kill()
    server.start()

    await wait_for_status(client, job_id, "COMPLETE", timeout=10)
    assert (await first_state_after_resubscribing(server, job_id))["status"] == "COMPLETE"
    assert await runs_for(control, job_id) == [runpod_id]
    await client.aclose()
