"""Where a waiting export stands and when it should finish: queue positions across
users, their moves pushed to subscribers, and estimates from the service's history."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.servers.runpod_fake import RunningRunPodServer
from tests.support.app_server import RunningApp, StartApi
from tests.support.assets import SeededAssets, seed_assets
from tests.support.exports import runpod_id_of, start_overlay, wait_for_status
from tests.support.graphql import GraphQLHTTP, GraphQLWebSocket
from tests.support.queries import CANCEL
from tests.support.resume import RESUME_JOBS, cursor_of, next_changes, queued_jobs
from tests.support.tokens import JWT_SECRET, token_for
from tests.support.waiting import eventually

PLACE = """
query Place($id: ID!) {
  exportJob(id: $id) {
    status queuePosition queuePositionIsLowerBound
    eta { startsAt completesAt completesAtLow completesAtHigh basis }
  }
}
"""
WATCH_PLACE = """
subscription ($id: ID!) { exportJob(id: $id) { status queuePosition } }
"""


async def place(client: GraphQLHTTP, job_id: str) -> dict[str, Any]:
    job = (await client.execute(PLACE, {"id": job_id}))["exportJob"]
    assert job is not None
    return dict(job)


async def positions(clients_and_jobs: list[tuple[GraphQLHTTP, str]]) -> list[int | None]:
    return [(await place(client, job_id))["queuePosition"] for client, job_id in clients_and_jobs]


async def test_waiting_exports_stand_in_submission_order_across_users(
    start_api: StartApi, runpod: RunningRunPodServer
) -> None:
    api = start_api(auth_jwt_secret=JWT_SECRET)
    ann_assets = await seed_assets(api.settings, "ann")
    bob_assets = await seed_assets(api.settings, "bob")
    async with (
        GraphQLHTTP(api.graphql_url, token_for("ann")) as ann_client,
        GraphQLHTTP(api.graphql_url, token_for("bob")) as bob_client,
    ):
        line = [
            (ann_client, await start_overlay(ann_client, ann_assets.project_id)),
            (bob_client, await start_overlay(bob_client, bob_assets.project_id)),
            (ann_client, await start_overlay(ann_client, ann_assets.project_id)),
            (bob_client, await start_overlay(bob_client, bob_assets.project_id)),
        ]
        for client, job_id in line:
            await wait_for_status(client, job_id, "QUEUED")

        async def in_order() -> bool:
            return await positions(line) == [1, 2, 3, 4]

        await eventually(in_order)
        first = await place(ann_client, line[0][1])
        # The stand-in counts exactly our four queued jobs: no other client ahead.
        assert first["queuePositionIsLowerBound"] is False
        assert first["eta"] is None  # no export has finished yet: nothing to go on

        await bob_client.execute(CANCEL, {"id": line[1][1]})
        running = await runpod_id_of(runpod, line[0][1])
        runpod.control.progress(running, 10)

        async def moved_up() -> bool:
            return await positions(line) == [None, None, 1, 2]

        await eventually(moved_up)


async def test_a_subscriber_hears_its_position_move_and_nothing_in_between(
    start_api: StartApi, runpod: RunningRunPodServer
) -> None:
    api = start_api()
    assets = await seed_assets(api.settings, "local")
    async with GraphQLHTTP(api.graphql_url) as client:
        ahead = [await start_overlay(client, assets.project_id) for _ in range(2)]
        mine = await start_overlay(client, assets.project_id)
        for job_id in (*ahead, mine):
            await wait_for_status(client, job_id, "QUEUED")
        await eventually(lambda: _position_is(client, mine, 3))
        socket = await GraphQLWebSocket.connect(api.ws_url)
        try:
            updates = socket.subscribe(WATCH_PLACE, {"id": mine})
            assert (await anext(updates))["exportJob"] == {"status": "QUEUED", "queuePosition": 3}
            await asyncio.sleep(1.5)  # a refresh or more of the line, nothing moved in it
            runpod.control.progress(await runpod_id_of(runpod, ahead[0]), 10)
            moved = await asyncio.wait_for(anext(updates), 15)
            assert moved["exportJob"] == {"status": "QUEUED", "queuePosition": 2}
            await client.execute(CANCEL, {"id": ahead[1]})
            moved = await asyncio.wait_for(anext(updates), 15)
            assert moved["exportJob"] == {"status": "QUEUED", "queuePosition": 1}
            runpod.control.progress(await runpod_id_of(runpod, mine), 10)
            started = await asyncio.wait_for(anext(updates), 15)
            assert started["exportJob"] == {"status": "PROCESSING", "queuePosition": None}
        finally:
            await socket.close()


async def test_a_stream_with_cursors_hears_no_position_move_it_does_not_select(
    api: RunningApp, client: GraphQLHTTP, assets: SeededAssets, runpod: RunningRunPodServer
) -> None:
    (ahead, run_ahead), (mine, run_mine) = await queued_jobs(
        client, runpod.control, assets.project_id, 2
    )
    await eventually(lambda: _position_is(client, mine, 2))
    sockets = [await GraphQLWebSocket.connect(api.ws_url) for _ in range(2)]
    # Resumed after `ahead`'s last change: `mine` as it stands, once.
    stream = sockets[0].subscribe(RESUME_JOBS, {"since": await cursor_of(client, ahead)})
    assert (await next_changes(stream, 1))[0] == [(mine, "QUEUED", 0)]
    places = sockets[1].subscribe(WATCH_PLACE, {"id": mine})
    assert (await anext(places))["exportJob"] == {"status": "QUEUED", "queuePosition": 2}

    runpod.control.progress(run_ahead, 10)
    assert (await next_changes(stream, 1))[0] == [(ahead, "PROCESSING", 10)]
    # `mine` moved up: the stream's cursor moved too, but nothing it selects.
    moved = await asyncio.wait_for(anext(places), 15)
    assert moved["exportJob"] == {"status": "QUEUED", "queuePosition": 1}
    runpod.control.progress(run_mine, 20)
    assert (await next_changes(stream, 1))[0] == [(mine, "PROCESSING", 20)]
    for socket in sockets:
        await socket.close()


async def _position_is(client: GraphQLHTTP, job_id: str, position: int) -> bool:
    return (await place(client, job_id))["queuePosition"] == position


async def test_estimates_come_from_the_services_own_finished_exports(
    start_api: StartApi, runpod: RunningRunPodServer
) -> None:
    api = start_api()
    assets = await seed_assets(api.settings, "local")
    async with GraphQLHTTP(api.graphql_url) as client:
        finished = [await start_overlay(client, assets.project_id) for _ in range(3)]
        for job_id in finished:
            runpod_id = await runpod_id_of(runpod, job_id)
            runpod.control.progress(runpod_id, 50)
            runpod.control.complete(runpod_id)
            await wait_for_status(client, job_id, "COMPLETE")
        waiting = await start_overlay(client, assets.project_id)
        await wait_for_status(client, waiting, "QUEUED")

        async def estimated() -> dict[str, Any] | None:
            eta = (await place(client, waiting))["eta"]
            return eta if eta is not None else None

        eta = await eventually(estimated)
        assert eta["basis"] == "HISTORY"
        assert eta["startsAt"] is not None
        assert eta["completesAtLow"] <= eta["completesAt"] <= eta["completesAtHigh"]


async def test_jobs_of_other_clients_in_runpods_queue_make_the_position_a_lower_bound(
    start_api: StartApi, runpod: RunningRunPodServer
) -> None:
    api = start_api(runpod_health_interval_s=0.2)
    assets = await seed_assets(api.settings, "local")
    async with GraphQLHTTP(api.graphql_url) as client:
        mine = await start_overlay(client, assets.project_id)
        await wait_for_status(client, mine, "QUEUED")

        async def counted_alone() -> bool:
            return (await place(client, mine))["queuePositionIsLowerBound"] is False

        await eventually(counted_alone)
        # Another client of the same endpoint queues a job of its own.
        async with httpx.AsyncClient() as other_client:
            answer = await other_client.post(f"{runpod.url}/run", json={"input": {"x": 1}})
            assert answer.status_code == 200

        async def behind_unknown_jobs() -> dict[str, Any] | None:
            shown = await place(client, mine)
            return shown if shown["queuePositionIsLowerBound"] else None

        shown = await eventually(behind_unknown_jobs)
        assert shown["queuePosition"] == 1  # the one this service can count
