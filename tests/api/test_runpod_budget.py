"""Staying inside RunPod's limits: what is polled first, paced starts and cancels, the
policy each /run carries, and queued jobs left alone while no worker is free.

Timing comes from the settings (a budget of a few requests per second, intervals
of minutes for what must not be polled) and from the RunPod stand-in's state;
nothing waits on this machine's speed beyond `eventually`'s generous timeouts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx

from gql.assets.repository import AssetRepository
from gql.db.database import Database
from tests.servers.runpod_fake import RunningRunPodServer
from tests.support.app_server import RunningApp, StartApi
from tests.support.assets import SeededAssets, seed_assets
from tests.support.exports import runpod_id_of, start_overlay, wait_for_status
from tests.support.graphql import GraphQLHTTP, GraphQLWebSocket
from tests.support.queries import CANCEL, START_ANNOTATE, WATCH_JOB, annotate_input
from tests.support.waiting import eventually


async def healthz(api: RunningApp) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        return dict((await http.get(f"{api.url}/healthz")).json())


async def next_state(updates: AsyncIterator[dict[str, Any]]) -> tuple[str, int]:
    """The status and progress of a subscription's next update."""
    job = (await asyncio.wait_for(anext(updates), 10))["exportJob"]
    return job["status"], job["progress"]


async def polls_of(runpod: RunningRunPodServer, runpod_id: str) -> int:
    counts = await asyncio.to_thread(runpod.control.counts)
    return counts.job(runpod_id)


async def test_a_first_subscriber_has_an_unwatched_job_polled_at_once(
    start_api: StartApi, runpod: RunningRunPodServer
) -> None:
    # Unwatched, the job would next be polled in ten minutes.
    api = start_api(poll_interval_s=0.05, poll_interval_unwatched_s=600)
    assets = await seed_assets(api.settings, "local")
    async with GraphQLHTTP(api.graphql_url) as client:
        job_id = await start_overlay(client, assets.project_id)
        runpod_id = await runpod_id_of(runpod, job_id)
        await wait_for_status(client, job_id, "QUEUED")
        await eventually(lambda: polls_of(runpod, runpod_id))  # the poll after the /run
        runpod.control.progress(runpod_id, 40, "rendering")
        before = await polls_of(runpod, runpod_id)
        await asyncio.sleep(0.5)  # ten watched intervals: an unwatched job stays unasked
        assert await polls_of(runpod, runpod_id) == before

        socket = await GraphQLWebSocket.connect(api.ws_url)
        try:
            updates = socket.subscribe(WATCH_JOB, {"id": job_id})
            first = await anext(updates)
            assert first["exportJob"]["status"] == "QUEUED"
            assert await next_state(updates) == ("PROCESSING", 40)
        finally:
            await socket.close()


async def test_when_the_budget_binds_watched_jobs_are_polled_first(
    start_api: StartApi, runpod: RunningRunPodServer
) -> None:
    # Ten /status requests per 10 s: about one a second for five jobs that would each
    # be asked ten times a second. Counted in polls, not seconds: the watched job waits
    # for at most one token before it is granted, so between two of its polls at most
    # the one token that came while its own poll was in flight goes to another job.
    # Without priorities the five would share the tokens evenly.
    api = start_api(
        poll_interval_s=0.1,
        poll_interval_unwatched_s=0.1,
        runpod_status_rate=10,
        runpod_rate_window_s=10,
    )
    assets = await seed_assets(api.settings, "local")
    async with GraphQLHTTP(api.graphql_url) as client:
        job_ids = [await start_overlay(client, assets.project_id) for _ in range(5)]
        runpod_ids = [await runpod_id_of(runpod, job_id) for job_id in job_ids]
        for runpod_id in runpod_ids:  # each has had its first poll after the /run
            await eventually(lambda runpod_id=runpod_id: polls_of(runpod, runpod_id), timeout=30)
        socket = await GraphQLWebSocket.connect(api.ws_url)
        try:
            updates = socket.subscribe(WATCH_JOB, {"id": job_ids[0]})
            await anext(updates)
            before = [await polls_of(runpod, runpod_id) for runpod_id in runpod_ids]

            async def watched_polled_six_times() -> bool:
                return await polls_of(runpod, runpod_ids[0]) >= before[0] + 6

            await eventually(watched_polled_six_times, timeout=60)
            after = [await polls_of(runpod, runpod_id) for runpod_id in runpod_ids]
        finally:
            await socket.close()
    spent = [b - a for a, b in zip(before, after, strict=True)]
    watched, unwatched = spent[0], sum(spent[1:])
    assert unwatched <= watched + 1, spent  # an even share would be 4 x watched
    budget = (await healthz(api))["runpod_budget"]["status"]
    assert budget["throttled"] == 0


async def test_starts_beyond_the_run_budget_stay_pending_and_go_out_in_order(
    start_api: StartApi, runpod: RunningRunPodServer
) -> None:
    # Five /run per second: a burst of twelve takes a few seconds to submit.
    api = start_api(runpod_run_rate=5, runpod_rate_window_s=1)
    assets = await seed_assets(api.settings, "local")
    async with GraphQLHTTP(api.graphql_url) as client:
        job_ids = [await start_overlay(client, assets.project_id) for _ in range(12)]

        async def all_submitted() -> bool:
            runs = await asyncio.to_thread(runpod.control.runs)
            return len(runs) >= len(job_ids)

        await eventually(all_submitted, timeout=30)
        runs = await asyncio.to_thread(runpod.control.runs)
        assert [run.input["job_id"] for run in runs] == job_ids  # once each, in order
        for job_id in job_ids:
            await wait_for_status(client, job_id, "QUEUED")


async def test_a_watched_poll_does_not_queue_behind_starts_waiting_for_the_run_budget(
    start_api: StartApi, runpod: RunningRunPodServer
) -> None:
    # One /run a minute and one request in flight: the starts after the first wait
    # for /run's budget for the whole test. The watched job's polls pass them.
    api = start_api(
        poll_interval_s=0.05,
        runpod_run_rate=1,
        runpod_rate_window_s=60,
        runpod_max_concurrency=1,
    )
    assets = await seed_assets(api.settings, "local")
    async with GraphQLHTTP(api.graphql_url) as client:
        watched = await start_overlay(client, assets.project_id)
        runpod_id = await runpod_id_of(runpod, watched)
        await wait_for_status(client, watched, "QUEUED")
        socket = await GraphQLWebSocket.connect(api.ws_url)
        try:
            updates = socket.subscribe(WATCH_JOB, {"id": watched})
            assert (await anext(updates))["exportJob"]["status"] == "QUEUED"
            for _ in range(3):
                await start_overlay(client, assets.project_id)

            async def starts_waiting() -> bool:
                return (await healthz(api))["runpod_budget"]["run"]["waiting"] == 3

            await eventually(starts_waiting)
            runpod.control.progress(runpod_id, 40, "rendering")
            assert await next_state(updates) == ("PROCESSING", 40)
        finally:
            await socket.close()
    runs = await asyncio.to_thread(runpod.control.runs)
    assert [run.input["job_id"] for run in runs] == [watched]  # the others still wait


async def test_cancels_beyond_the_cancel_budget_are_queued_and_none_is_lost(
    start_api: StartApi, runpod: RunningRunPodServer
) -> None:
    api = start_api(runpod_cancel_rate=3, runpod_rate_window_s=1)
    assets = await seed_assets(api.settings, "local")
    async with GraphQLHTTP(api.graphql_url) as client:
        job_ids = [await start_overlay(client, assets.project_id) for _ in range(10)]
        runpod_ids = [await runpod_id_of(runpod, job_id) for job_id in job_ids]
        for job_id in job_ids:
            await wait_for_status(client, job_id, "QUEUED")
        for job_id in job_ids:
            data = await client.execute(CANCEL, {"id": job_id})
            assert data["cancelExport"]["job"]["status"] == "CANCELLED"

    def all_cancelled_on_runpod() -> bool:
        return all(runpod.control.job(rid).status == "CANCELLED" for rid in runpod_ids)

    await eventually(lambda: asyncio.to_thread(all_cancelled_on_runpod), timeout=30)
    counts = await asyncio.to_thread(runpod.control.counts)
    assert counts.route("cancel") == len(job_ids)


async def test_a_429_halves_the_routes_rate_and_the_job_still_ends(
    api: RunningApp, client: GraphQLHTTP, assets: SeededAssets, runpod: RunningRunPodServer
) -> None:
    job_id = await start_overlay(client, assets.project_id)
    runpod_id = await runpod_id_of(runpod, job_id)
    await wait_for_status(client, job_id, "QUEUED")
    runpod.control.inject("429", route="status", retry_after=1)

    async def throttled() -> dict[str, Any] | None:
        status = (await healthz(api))["runpod_budget"]["status"]
        return status if status["throttled"] == 1 else None

    status = await eventually(throttled)
    assert status["rate_per_s"] < status["full_rate_per_s"]
    runpod.control.complete(runpod_id)
    final = await wait_for_status(client, job_id, "COMPLETE")
    assert final["error"] is None


async def test_each_run_carries_its_execution_policy(
    api: RunningApp, client: GraphQLHTTP, assets: SeededAssets, runpod: RunningRunPodServer
) -> None:
    database = Database(api.settings.database_url)
    await database.connect()
    try:
        await AssetRepository(database).record_duration(assets.working_key, 30.0)
    finally:
        await database.disconnect()
    known = await start_overlay(client, assets.project_id)
    data = await client.execute(START_ANNOTATE, {"input": annotate_input(assets.game_id)})
    clips = data["startAnnotateExport"]["job"]["id"]
    for job_id in (known, clips):
        await runpod_id_of(runpod, job_id)
    policies = {
        run.input["job_id"]: run.policy for run in await asyncio.to_thread(runpod.control.runs)
    }
    # 60 s + 4 s per second of video (x1.5 for annotate), the TTL RunPod's default day.
    assert policies[known] == {"executionTimeout": (60 + 4 * 30) * 1000, "ttl": 86_400_000}
    assert policies[clips] == {"executionTimeout": (60 + 4 * 1.5 * 3) * 1000, "ttl": 86_400_000}


async def test_queued_jobs_are_left_alone_while_no_worker_is_free(
    start_api: StartApi, runpod: RunningRunPodServer
) -> None:
    # The stand-in has two workers; two running jobs leave the third waiting.
    api = start_api(
        poll_interval_s=0.05, poll_interval_unwatched_s=0.05, runpod_health_interval_s=0.1
    )
    assets = await seed_assets(api.settings, "local")
    async with GraphQLHTTP(api.graphql_url) as client:
        job_ids = [await start_overlay(client, assets.project_id) for _ in range(3)]
        running_a, running_b, queued = [await runpod_id_of(runpod, j) for j in job_ids]
        runpod.control.progress(running_a, 10)
        runpod.control.progress(running_b, 10)

        async def no_worker_free() -> bool:
            endpoint = (await healthz(api))["checks"]["runpod"]
            return endpoint.get("workers_idle") == 0 and not endpoint["queued_jobs_may_start"]

        await eventually(no_worker_free)
        socket = await GraphQLWebSocket.connect(api.ws_url)
        try:
            updates = socket.subscribe(WATCH_JOB, {"id": job_ids[2]})
            await anext(updates)
            # Polls in flight when the gate closed (the first subscriber's included)
            # have landed once the count holds still.
            before = await settled_polls(runpod, queued)
            await asyncio.sleep(1.0)  # twenty intervals, and no worker to start it
            assert await polls_of(runpod, queued) == before
            runpod.control.complete(running_a)  # a worker frees: the queue moves on
            await eventually(lambda: _more_polls(runpod, queued, than=before), timeout=10)
        finally:
            await socket.close()


async def settled_polls(runpod: RunningRunPodServer, runpod_id: str) -> int:
    """The job's poll count once two readings 0.3 s apart agree."""
    previous = -1
    for _ in range(100):
        count = await polls_of(runpod, runpod_id)
        if count == previous:
            return count
        previous = count
        await asyncio.sleep(0.3)
    raise AssertionError("the job's polls never stopped")


async def _more_polls(runpod: RunningRunPodServer, runpod_id: str, *, than: int) -> bool:
    return await polls_of(runpod, runpod_id) > than
