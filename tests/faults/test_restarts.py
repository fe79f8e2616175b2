"""`kill -9` the API at each stage of a job, restart it on the same database.

Every job reaches its true final state, at most one RunPod run does the work of
an export, and a client subscribing after the restart is sent the current state
first, then every change up to the final one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.servers.runpod_control import RunPodControl
from tests.servers.runpod_fake import RunPodServerProcess
from tests.support.api_process import ApiProcess, StartServer
from tests.support.assets import seed_assets
from tests.support.exports import job_state, runs_for, start_overlay, wait_for_status
from tests.support.graphql import GraphQLHTTP, GraphQLWebSocket, collect
from tests.support.queries import WATCH_JOB
from tests.support.waiting import eventually

pytestmark = pytest.mark.faults

Stream = AsyncIterator[dict[str, Any]]


async def started_job(server: ApiProcess) -> tuple[GraphQLHTTP, str]:
    assets = await seed_assets(server.settings, "local")
    client = GraphQLHTTP(server.graphql_url)
    return client, await start_overlay(client, assets.project_id)


async def resubscribe(server: ApiProcess, job_id: str) -> tuple[GraphQLWebSocket, Stream, str]:
    """Subscribe as a client coming back after the restart; returns the first status."""
    socket = await GraphQLWebSocket.connect(server.ws_url)
    stream = socket.subscribe(WATCH_JOB, {"id": job_id})
    first = (await anext(stream))["exportJob"]
    return socket, stream, first["status"]


async def statuses_until_final(socket: GraphQLWebSocket, stream: Stream) -> list[str]:
    rest = await collect(stream)
    await socket.close()
    return [update["exportJob"]["status"] for update in rest]


async def first_state_on_subscribing(server: ApiProcess, job_id: str) -> dict[str, Any]:
    """What a client that (re)subscribes to the job is sent first."""
    socket = await GraphQLWebSocket.connect(server.ws_url)
    try:
        first = (await anext(socket.subscribe(WATCH_JOB, {"id": job_id})))["exportJob"]
    finally:
        await socket.close()
    assert isinstance(first, dict)
    return first


def runpod_statuses(control: RunPodControl, runpod_ids: list[str]) -> list[str]:
    return [control.job(runpod_id).status for runpod_id in runpod_ids]


async def test_killed_after_the_row_is_written_before_run_submits_once_after_restart(
    start_server: StartServer, runpod_process: RunPodServerProcess
) -> None:
    runpod_process.kill()  # connection refused: the job is recorded, not submitted
    server = start_server()
    client, job_id = await started_job(server)
    assert (await job_state(client, job_id))["status"] == "PENDING"

    server.kill()
    runpod_process.start()
    server.start()
    control = runpod_process.control
    assert control is not None

    (runpod_id,) = await eventually(lambda: runs_for(control, job_id))
    await wait_for_status(client, job_id, "QUEUED")
    socket, stream, first = await resubscribe(server, job_id)
    control.complete(runpod_id)

    assert first == "QUEUED"
    assert await statuses_until_final(socket, stream) == ["COMPLETE"]
    final = await job_state(client, job_id)
    assert (final["status"], final["progress"], final["error"]) == ("COMPLETE", 100, None)
    assert await runs_for(control, job_id) == [runpod_id]
    assert runpod_statuses(control, [runpod_id]) == ["COMPLETED"]
    await client.aclose()


async def killed_while_run_is_in_flight(
    start_server: StartServer, control: RunPodControl
) -> tuple[ApiProcess, GraphQLHTTP, str, str]:
    """Kill the API (webhooks on) once RunPod has accepted its `/run`, before the
    answer arrives. Returns the server, a client, the job and the lost run."""
    control.inject("late", route="run", delay=5)
    server = start_server(webhooks=True)
    client, job_id = await started_job(server)
    (lost,) = await eventually(lambda: runs_for(control, job_id))
    server.kill()
    return server, client, job_id, lost


async def resubmitted(control: RunPodControl, client: GraphQLHTTP, job_id: str, lost: str) -> str:
    """The restarted API submits again: the export's second run, which it follows."""

    async def second_run() -> list[str] | None:
        runs = await runs_for(control, job_id)
        return runs if len(runs) == 2 else None

    first, followed = await eventually(second_run)
    assert first == lost
    await wait_for_status(client, job_id, "QUEUED")
    return followed


async def test_killed_while_run_is_in_flight_the_duplicate_that_finishes_first_is_kept(
    start_server: StartServer, control: RunPodControl
) -> None:
    server, client, job_id, lost = await killed_while_run_is_in_flight(start_server, control)
    server.start()
    followed = await resubmitted(control, client, job_id, lost)
    socket, stream, first = await resubscribe(server, job_id)

    # The lost run was queued first and finishes first; RunPod calls its webhook.
    control.progress(lost, 60, "encoding")
    control.complete(lost)

    assert first == "QUEUED"
    assert await statuses_until_final(socket, stream) == ["COMPLETE"]
    await eventually(lambda: control.job(followed).status == "CANCELLED")
    assert runpod_statuses(control, [lost, followed]) == ["COMPLETED", "CANCELLED"]
    counts = control.counts()
    assert (counts.job(lost, "cancel"), counts.job(followed, "cancel")) == (0, 1)
    assert f"action=duplicate_adopted job={job_id} runpod_id={followed} duplicate={lost}" in (
        server.log()
    )
    assert (await first_state_on_subscribing(server, job_id))["status"] == "COMPLETE"
    await client.aclose()


async def test_killed_while_run_is_in_flight_a_duplicate_still_running_is_cancelled(
    start_server: StartServer, control: RunPodControl
) -> None:
    server, client, job_id, lost = await killed_while_run_is_in_flight(start_server, control)
    server.start()
    followed = await resubmitted(control, client, job_id, lost)
    control.progress(lost, 30, "decoding")
    control.fire_webhook(lost)  # its webhook arrives while it still runs

    await eventually(lambda: control.job(lost).status == "CANCELLED")
    assert f"action=duplicate_cancelled job={job_id} runpod_id={followed} duplicate={lost}" in (
        server.log()
    )
    control.complete(followed)
    final = await wait_for_status(client, job_id, "COMPLETE")

    assert final["progress"] == 100
    assert runpod_statuses(control, [lost, followed]) == ["CANCELLED", "COMPLETED"]
    counts = control.counts()
    assert (counts.job(lost, "cancel"), counts.job(followed, "cancel")) == (1, 0)
    assert (await first_state_on_subscribing(server, job_id))["status"] == "COMPLETE"
    await client.aclose()


async def test_killed_while_run_is_in_flight_a_lost_run_heard_of_before_resubmitting_is_followed(
    start_server: StartServer, control: RunPodControl
) -> None:
    server, client, job_id, lost = await killed_while_run_is_in_flight(start_server, control)
    control.inject("503", route="run", count=1_000_000, retry_after=None)
    server.start()
    # The restarted API tries to submit again, and cannot.
    await eventually(lambda: control.counts().route("run") >= 3)
    assert (await job_state(client, job_id))["status"] == "PENDING"

    control.progress(lost, 80, "encoding")
    control.complete(lost)

    final = await wait_for_status(client, job_id, "COMPLETE")
    assert (final["progress"], final["error"]) == (100, None)
    assert f"action=lost_run_adopted job={job_id} runpod_id=None duplicate={lost}" in (server.log())
    control.clear_faults()
    await asyncio.sleep(0.5)  # time enough for a submission, were one still due
    assert await runs_for(control, job_id) == [lost]
    assert (await first_state_on_subscribing(server, job_id))["status"] == "COMPLETE"
    await client.aclose()


async def test_killed_while_processing_resumes_from_runpods_progress_to_its_failure(
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
        return (await job_state(client, job_id))["progress"] == 70

    await eventually(at_seventy)
    socket = await GraphQLWebSocket.connect(server.ws_url)
    stream = socket.subscribe(WATCH_JOB, {"id": job_id})
    first = (await anext(stream))["exportJob"]
    control.fail(runpod_id, "disk full on the worker")
    rest = await collect(stream)
    await socket.close()

    assert (first["status"], first["progress"], first["message"]) == ("PROCESSING", 70, "muxing")
    assert [(u["exportJob"]["status"], u["exportJob"]["error"]) for u in rest] == [
        ("ERROR", "disk full on the worker")
    ]
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
    assert (await job_state(client, job_id))["status"] == "QUEUED"

    server.kill()
    server.start()

    final = await wait_for_status(client, job_id, "COMPLETE", timeout=10)
    assert (final["progress"], final["error"]) == (100, None)
    assert (await first_state_on_subscribing(server, job_id))["status"] == "COMPLETE"
    assert await runs_for(control, job_id) == [runpod_id]
    await client.aclose()
