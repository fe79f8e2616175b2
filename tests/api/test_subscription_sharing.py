"""Identical subscriptions share one execution; different users never share one."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.servers.runpod_fake import RunningRunPodServer
from tests.support.app_server import RunningApp, StartApi
from tests.support.assets import SeededAssets, seed_assets
from tests.support.exports import runpod_id_of, start_overlay
from tests.support.graphql import (
    PROTOCOLS,
    GraphQLHTTP,
    GraphQLWebSocket,
    SubscriptionError,
)
from tests.support.queries import WATCH_JOB, WATCH_JOBS
from tests.support.sharing import sharing
from tests.support.tokens import JWT_SECRET, token_for
from tests.support.waiting import eventually

Stream = AsyncIterator[dict[str, Any]]


async def next_job(stream: Stream) -> dict[str, Any]:
    return dict((await anext(stream))["exportJob"])


async def job_at_progress(stream: Stream, progress: int) -> dict[str, Any]:
    """The stream's next job state at `progress` or beyond (earlier ones are skipped)."""
    job = await next_job(stream)
    while job["progress"] < progress:
        job = await next_job(stream)
    return job


async def next_change(stream: Stream) -> dict[str, Any]:
    return dict((await anext(stream))["exportJobs"])


async def test_identical_subscriptions_run_once_and_every_subscriber_gets_every_change(
    api: RunningApp, client: GraphQLHTTP, assets: SeededAssets, runpod: RunningRunPodServer
) -> None:
    job_id = await start_overlay(client, assets.project_id)
    runpod_id = await runpod_id_of(runpod, job_id)
    sockets = [await GraphQLWebSocket.connect(api.ws_url, protocol) for protocol in PROTOCOLS * 2]
    streams = [socket.subscribe(WATCH_JOB, {"id": job_id}) for socket in sockets for _ in range(5)]
    for stream in streams:
        assert (await next_job(stream))["id"] == job_id
    await eventually(lambda: sharing(api, groups=1, subscribers=20))

    runpod.control.progress(runpod_id, 40, "encoding")
    for stream in streams:
        job = await job_at_progress(stream, 40)
        assert (job["status"], job["progress"], job["message"]) == ("PROCESSING", 40, "encoding")
    runpod.control.complete(runpod_id)

    for stream in streams:
        remaining = [update["exportJob"] async for update in stream]
        assert remaining[-1]["status"] == "COMPLETE"
    await eventually(lambda: sharing(api, groups=0, subscribers=0))
    for socket in sockets:
        await socket.close()


WATCH_STATUS = """
subscription WatchStatus($id: ID!) {
  exportJob(id: $id) { status }
}
"""


async def test_changes_to_fields_a_subscription_did_not_select_send_it_nothing(
    api: RunningApp, client: GraphQLHTTP, assets: SeededAssets, runpod: RunningRunPodServer
) -> None:
    job_id = await start_overlay(client, assets.project_id)
    runpod_id = await runpod_id_of(runpod, job_id)
    socket = await GraphQLWebSocket.connect(api.ws_url)
    status_only = socket.subscribe(WATCH_STATUS, {"id": job_id})
    everything = socket.subscribe(WATCH_JOB, {"id": job_id})
    statuses = [(await next_job(status_only))["status"]]
    await next_job(everything)
    runpod.control.progress(runpod_id, 20, "at 20")
    while statuses[-1] != "PROCESSING":
        statuses.append((await next_job(status_only))["status"])
    for progress in (40, 60):
        runpod.control.progress(runpod_id, progress, f"at {progress}")
        # Seen by the full subscription: the change is in, for both to execute.
        await job_at_progress(everything, progress)
    runpod.control.complete(runpod_id)

    statuses += [update["exportJob"]["status"] async for update in status_only]
    assert statuses[-1] == "COMPLETE"
    assert "PROCESSING" in statuses
    assert all(earlier != later for earlier, later in itertools.pairwise(statuses))
    await socket.close()


async def test_a_subscriber_joining_a_running_group_gets_the_current_state_first(
    api: RunningApp, client: GraphQLHTTP, assets: SeededAssets, runpod: RunningRunPodServer
) -> None:
    job_id = await start_overlay(client, assets.project_id)
    runpod_id = await runpod_id_of(runpod, job_id)
    first = await GraphQLWebSocket.connect(api.ws_url)
    early = first.subscribe(WATCH_JOB, {"id": job_id})
    await next_job(early)
    runpod.control.progress(runpod_id, 60, "halfway")
    await job_at_progress(early, 60)

    second = await GraphQLWebSocket.connect(api.ws_url, "graphql-ws")
    late = second.subscribe(WATCH_JOB, {"id": job_id})

    job = await next_job(late)
    assert (job["status"], job["progress"], job["message"]) == ("PROCESSING", 60, "halfway")
    assert await sharing(api, groups=1, subscribers=2)
    await first.close()
    await second.close()


async def test_leaving_a_group_keeps_the_others_subscribed_and_the_last_one_ends_it(
    api: RunningApp, client: GraphQLHTTP, assets: SeededAssets, runpod: RunningRunPodServer
) -> None:
    job_id = await start_overlay(client, assets.project_id)
    runpod_id = await runpod_id_of(runpod, job_id)
    socket = await GraphQLWebSocket.connect(api.ws_url)
    leaving, staying = (socket.subscribe(WATCH_JOB, {"id": job_id}) for _ in range(2))
    await next_job(leaving)
    await next_job(staying)

    await leaving.aclose()  # sends `complete` for its operation id
    await eventually(lambda: sharing(api, groups=1, subscribers=1))
    runpod.control.progress(runpod_id, 30)
    await job_at_progress(staying, 30)

    await staying.aclose()
    await eventually(lambda: sharing(api, groups=0, subscribers=0))
    await socket.close()


async def test_the_same_document_from_two_users_runs_separately(
    start_api: StartApi, runpod: RunningRunPodServer
) -> None:
    api = start_api(auth_jwt_secret=JWT_SECRET)
    alice_http = GraphQLHTTP(api.graphql_url, token_for("alice"))
    assets = await seed_assets(api.settings, "alice")
    job_id = await start_overlay(alice_http, assets.project_id)
    runpod_id = await runpod_id_of(runpod, job_id)
    alice = await GraphQLWebSocket.connect(api.ws_url, params={"token": token_for("alice")})
    mallory = await GraphQLWebSocket.connect(api.ws_url, params={"token": token_for("mallory")})
    # Subscriptions start on their first read: read in the background.
    alice_change = asyncio.create_task(next_change(alice.subscribe(WATCH_JOBS)))
    mallory_change = asyncio.create_task(next_change(mallory.subscribe(WATCH_JOBS)))
    alice_job = alice.subscribe(WATCH_JOB, {"id": job_id})
    await next_job(alice_job)
    await eventually(lambda: sharing(api, groups=3, subscribers=3))

    with pytest.raises(SubscriptionError, match="No such export job"):
        await next_job(mallory.subscribe(WATCH_JOB, {"id": job_id}))
    runpod.control.progress(runpod_id, 50)

    assert (await asyncio.wait_for(alice_change, 10))["id"] == job_id
    await asyncio.sleep(0.5)
    assert not mallory_change.done(), "another user's change reached mallory"
    mallory_change.cancel()
    await alice_http.aclose()
    await alice.close()
    await mallory.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_an_invalid_document_is_rejected_for_every_subscriber_of_it(
    api: RunningApp, protocol: str
) -> None:
    socket = await GraphQLWebSocket.connect(api.ws_url, protocol)  # type: ignore[arg-type]
    document = "subscription { exportJob(id: 1) { id noSuchField } }"

    for _ in range(2):
        with pytest.raises(SubscriptionError, match="noSuchField"):
            await anext(socket.subscribe(document))

    await eventually(lambda: sharing(api, groups=0, subscribers=0))
    await socket.close()


async def test_reusing_a_live_operation_id_closes_the_connection_with_4409(
    api: RunningApp, client: GraphQLHTTP, assets: SeededAssets
) -> None:
    job_id = await start_overlay(client, assets.project_id)
    socket = await GraphQLWebSocket.connect(api.ws_url)
    first = socket.subscribe(WATCH_JOB, {"id": job_id}, op_id="same")
    await next_job(first)

    payload = {"query": WATCH_JOB, "variables": {"id": job_id}}
    await socket.connection.send(
        json.dumps({"id": "same", "type": "subscribe", "payload": payload})
    )
    await asyncio.wait_for(socket.connection.wait_closed(), 5)

    assert socket.connection.close_code == 4409
    await eventually(lambda: sharing(api, groups=0, subscribers=0))
