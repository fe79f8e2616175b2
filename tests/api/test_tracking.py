"""The tracker: one poll per job however many watch, restarts, outages, webhooks, cancels."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx
import pytest

from gql.tracking.steps import JOB_UNKNOWN_TO_ENDPOINT
from tests.servers.runpod_fake import RunningRunPodServer
from tests.support.app_server import RunningApp, StartApi, free_port
from tests.support.assets import SeededAssets, seed_assets
from tests.support.exports import job_state, runpod_id_of, start_overlay, wait_for_status
from tests.support.graphql import GraphQLHTTP, GraphQLWebSocket, collect
from tests.support.queries import (
    CANCEL,
    RETRY,
    START_FRAMING,
    WATCH_JOB,
    framing_input,
)
from tests.support.waiting import eventually


async def test_hundred_subscribers_cost_one_runpod_poll_per_interval(
    api: RunningApp, client: GraphQLHTTP, assets: SeededAssets, runpod: RunningRunPodServer
) -> None:
    job_id = await start_overlay(client, assets.project_id)
    runpod_id = await runpod_id_of(runpod, job_id)
    runpod.control.progress(runpod_id, 5, "running")
    await wait_for_status(client, job_id, "PROCESSING")

    sockets = [await GraphQLWebSocket.connect(api.ws_url) for _ in range(100)]
    streams = [socket.subscribe(WATCH_JOB, {"id": job_id}) for socket in sockets]
    for stream in streams:
        assert (await anext(stream))["exportJob"]["progress"] == 5

    runpod.control.reset_counts()
    window = 1.0
    await asyncio.sleep(window)
    polls = runpod.control.counts().job(runpod_id, route="status")
    intervals = window / api.settings.poll_interval_s
    assert polls <= intervals * 1.3 + 1, f"{polls} polls in {intervals:.0f} intervals"
    assert polls >= intervals * 0.5

    runpod.control.progress(runpod_id, 60, "encoding")
    updates = await asyncio.gather(*(anext(stream) for stream in streams))
    assert {update["exportJob"]["progress"] for update in updates} == {60}
    for socket in sockets:
        await socket.close()


async def test_restart_mid_job_resumes_and_reaches_the_true_final_state(
    api: RunningApp, client: GraphQLHTTP, assets: SeededAssets, runpod: RunningRunPodServer
) -> None:
    job_id = await start_overlay(client, assets.project_id)
    runpod_id = await runpod_id_of(runpod, job_id)
    runpod.control.progress(runpod_id, 30, "encoding")
    await wait_for_status(client, job_id, "PROCESSING")

    api.stop()
    runpod.control.complete(runpod_id, {"output_key": "done"})
    api.start()

    final = await wait_for_status(client, job_id, "COMPLETE")
    assert final["progress"] == 100
    assert len(runpod.control.runs()) == 1


async def test_job_started_while_runpod_is_down_is_submitted_once_it_is_back(
    api: RunningApp, client: GraphQLHTTP, assets: SeededAssets, runpod: RunningRunPodServer
) -> None:
    runpod.control.set_down("503")
    job_ids = [await start_overlay(client, assets.project_id) for _ in range(3)]
    await eventually(lambda: runpod.control.counts().route("run") >= 3)
    for job_id in job_ids:
        assert (await job_state(client, job_id))["status"] == "PENDING"

    runpod.control.set_behaviour("auto", step=0.02)
    runpod.control.set_down(None)
    for job_id in job_ids:
        await wait_for_status(client, job_id, "COMPLETE")
    submitted = sorted(run.input["job_id"] for run in runpod.control.runs())
    assert submitted == sorted(job_ids)


async def test_mutation_answers_at_once_while_runpod_is_slow(
    api: RunningApp, client: GraphQLHTTP, assets: SeededAssets, runpod: RunningRunPodServer
) -> None:
    runpod.control.inject("delay", delay=3.0, route="run", count=5)
    started = asyncio.get_running_loop().time()
    job_id = await start_overlay(client, assets.project_id)
    assert asyncio.get_running_loop().time() - started < 1.0
    assert (await job_state(client, job_id))["status"] == "PENDING"
    await wait_for_status(client, job_id, "QUEUED")


async def test_same_idempotency_key_returns_the_same_job(
    api: RunningApp, client: GraphQLHTTP, assets: SeededAssets, runpod: RunningRunPodServer
) -> None:
    results = await asyncio.gather(
        *(start_overlay(client, assets.project_id, idempotencyKey="export-1") for _ in range(10))
    )
    assert len(set(results)) == 1
    again = await start_overlay(client, assets.project_id, idempotencyKey="export-1")
    assert again == results[0]
    other = await start_overlay(client, assets.project_id, idempotencyKey="export-2")
    assert other != again
    await eventually(lambda: len(runpod.control.runs()) == 2)
    await asyncio.sleep(0.2)
    assert len(runpod.control.runs()) == 2


async def test_a_wave_of_completions_leaves_the_running_jobs_followed(
    start_api: StartApi, runpod: RunningRunPodServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Finished jobs stop being followed at once, and a lone process never gives
    jobs up: it used to count the finished ones as an excess over its share, let
    running jobs go and claim them back a turn later, unfollowed meanwhile."""
    caplog.set_level(logging.INFO)
    port = free_port()
    # A long interval: a finished follower that lingered for one would be seen by
    # several lease turns (every half second).
    api = start_api(
        port=port, public_url=f"http://127.0.0.1:{port}", poll_interval_s=30, lease_ttl_s=2
    )
    assets = await seed_assets(api.settings, "local")
    client = GraphQLHTTP(api.graphql_url)
    job_ids = [await start_overlay(client, assets.project_id) for _ in range(30)]
    runpod_ids = [await runpod_id_of(runpod, job_id) for job_id in job_ids]
    for job_id in job_ids:
        await wait_for_status(client, job_id, "QUEUED")

    for runpod_id in runpod_ids[:20]:
        runpod.control.complete(runpod_id, {"output_key": "done"})
    for job_id in job_ids[:20]:
        await wait_for_status(client, job_id, "COMPLETE")

    async def leases() -> dict[str, Any] | None:
        async with httpx.AsyncClient() as http:
            held = (await http.get(f"{api.url}/healthz")).json()["checks"]["leases"]
        return held if (held["leases_held"], held["following"]) == (10, 10) else None

    await eventually(leases)
    await client.aclose()
    assert not [r for r in caplog.records if getattr(r, "action", None) == "lease_give_up"]


async def test_webhook_triggers_an_immediate_refresh_and_a_bad_token_changes_nothing(
    start_api: StartApi, runpod: RunningRunPodServer
) -> None:
    port = free_port()
    api = start_api(port=port, public_url=f"http://127.0.0.1:{port}", poll_interval_s=30)
    assets = await seed_assets(api.settings, "local")
    client = GraphQLHTTP(api.graphql_url)
    job_id = await start_overlay(client, assets.project_id)
    runpod_id = await runpod_id_of(runpod, job_id)
    (run,) = runpod.control.runs()
    assert run.webhook is not None
    assert run.webhook.startswith(f"http://127.0.0.1:{port}/webhooks/runpod?job={job_id}&token=")
    await wait_for_status(client, job_id, "QUEUED")

    async with httpx.AsyncClient() as http:
        forged = run.webhook.split("&token=")[0] + "&token=forged"
        response = await http.post(forged, json={"id": runpod_id, "status": "COMPLETED"})
        assert response.status_code == 401
        unknown = await http.post(
            f"{api.url}/webhooks/runpod?job=nope&token=x", json={"status": "COMPLETED"}
        )
        assert unknown.status_code == 401
        for params in (
            {"job": job_id},
            {"job": job_id, "token": "é" * 32},
            {"job": job_id + "x" * 10_000, "token": "x"},
        ):
            malformed = await http.post(f"{api.url}/webhooks/runpod", params=params, json={})
            assert malformed.status_code == 401, params
    assert (await job_state(client, job_id))["status"] == "QUEUED"

    started = asyncio.get_running_loop().time()
    runpod.control.complete(runpod_id, {"output_key": "done"})
    await wait_for_status(client, job_id, "COMPLETE")
    assert asyncio.get_running_loop().time() - started < 5
    assert runpod.control.webhook_deliveries()
    await client.aclose()


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_cancel_stops_the_runpod_job_and_completes_the_subscription(
    api: RunningApp,
    client: GraphQLHTTP,
    assets: SeededAssets,
    runpod: RunningRunPodServer,
    protocol: str,
) -> None:
    job_id = await start_overlay(client, assets.project_id)
    runpod_id = await runpod_id_of(runpod, job_id)
    runpod.control.progress(runpod_id, 20, "encoding")
    await wait_for_status(client, job_id, "PROCESSING")
    socket = await GraphQLWebSocket.connect(api.ws_url, protocol)  # type: ignore[arg-type]
    stream = socket.subscribe(WATCH_JOB, {"id": job_id})
    assert (await anext(stream))["exportJob"]["status"] == "PROCESSING"

    data = await client.execute(CANCEL, {"id": job_id})
    assert data["cancelExport"]["userErrors"] == []
    assert data["cancelExport"]["job"]["status"] == "CANCELLED"
    rest = await collect(stream)
    assert rest[-1]["exportJob"]["status"] == "CANCELLED"
    await eventually(lambda: runpod.control.job(runpod_id).status_json["status"] == "CANCELLED")
    assert runpod.control.counts().job(runpod_id, route="cancel") == 1
    await socket.close()


async def test_cancel_while_runpod_is_down_is_sent_once_it_is_back(
    api: RunningApp, client: GraphQLHTTP, assets: SeededAssets, runpod: RunningRunPodServer
) -> None:
    job_id = await start_overlay(client, assets.project_id)
    runpod_id = await runpod_id_of(runpod, job_id)
    await wait_for_status(client, job_id, "QUEUED")
    runpod.control.set_down("503")
    data = await client.execute(CANCEL, {"id": job_id})
    assert data["cancelExport"]["job"]["status"] == "CANCELLED"
    await asyncio.sleep(0.3)
    runpod.control.set_down(None)
    await eventually(lambda: runpod.control.job(runpod_id).status_json["status"] == "CANCELLED")


async def test_cancel_before_runpod_accepts_the_job_leaves_no_job_running_there(
    api: RunningApp, client: GraphQLHTTP, assets: SeededAssets, runpod: RunningRunPodServer
) -> None:
    runpod.control.set_down("503")
    job_id = await start_overlay(client, assets.project_id)
    data = await client.execute(CANCEL, {"id": job_id})
    assert data["cancelExport"]["job"]["status"] == "CANCELLED"
    runpod.control.set_down(None)
    await asyncio.sleep(0.5)
    # A submission already in flight may still land; it is then cancelled on RunPod too.
    for run in runpod.control.runs():
        await eventually(
            lambda run=run: runpod.control.job(run.id).status_json["status"] == "CANCELLED"
        )
    assert (await job_state(client, job_id))["status"] == "CANCELLED"


@pytest.mark.parametrize(
    ("outcome", "expected_error"),
    [
        ("forget", JOB_UNKNOWN_TO_ENDPOINT),
        (
            "TIMED_OUT",
            "The export timed out on RunPod: it waited in the queue past its time to live "
            "without a worker taking it",
        ),
        (
            "TIMED_OUT after running",
            # The seeded video's length is unknown: the ceiling was the job's timeout.
            "The export timed out on RunPod: it ran past its execution timeout (3600 s)",
        ),
        ("FAILED", "input video is unreadable"),
    ],
)
async def test_runpod_failures_end_the_job_in_error_with_a_clear_message(
    api: RunningApp,
    client: GraphQLHTTP,
    assets: SeededAssets,
    runpod: RunningRunPodServer,
    outcome: str,
    expected_error: str,
) -> None:
    job_id = await start_overlay(client, assets.project_id)
    runpod_id = await runpod_id_of(runpod, job_id)
    if outcome == "forget":
        runpod.control.forget(runpod_id)
    elif outcome == "FAILED":
        sdk_error = {
            "error_type": "<class 'ValueError'>",
            "error_message": "input video is unreadable",
            "error_traceback": 'Traceback (most recent call last):\n  File "handler.py"',
        }
        runpod.control.fail(runpod_id, json.dumps(sdk_error))
    elif outcome == "TIMED_OUT after running":
        runpod.control.progress(runpod_id, 30)
        await wait_for_status(client, job_id, "PROCESSING")
        runpod.control.set_job(runpod_id, "TIMED_OUT")
    else:
        runpod.control.set_job(runpod_id, "TIMED_OUT")
    final = await wait_for_status(client, job_id, "ERROR")
    assert final["error"] == expected_error
    assert final["downloadUrl"] is None


async def test_retry_starts_a_new_job_with_the_same_input(
    api: RunningApp, client: GraphQLHTTP, assets: SeededAssets, runpod: RunningRunPodServer
) -> None:
    job_id = await start_overlay(client, assets.project_id)
    runpod_id = await runpod_id_of(runpod, job_id)
    runpod.control.fail(runpod_id, "worker crashed")
    await wait_for_status(client, job_id, "ERROR")

    data = await client.execute(RETRY, {"id": job_id})
    retried = data["retryExport"]["job"]
    assert data["retryExport"]["userErrors"] == []
    assert retried["id"] != job_id
    assert retried["retryOf"] == job_id
    await runpod_id_of(runpod, retried["id"])
    first, second = runpod.control.runs()
    assert first.input["params"] == second.input["params"]
    assert first.input["input_key"] == second.input["input_key"]


async def test_framing_output_becomes_the_working_video_of_the_next_overlay(
    api: RunningApp, client: GraphQLHTTP, assets: SeededAssets, auto_runpod: RunningRunPodServer
) -> None:
    data = await client.execute(START_FRAMING, {"input": framing_input(assets.project_id)})
    framing_id = data["startFramingExport"]["job"]["id"]
    await wait_for_status(client, framing_id, "COMPLETE")
    overlay_id = await start_overlay(client, assets.project_id)
    await wait_for_status(client, overlay_id, "COMPLETE")
    framing_run, overlay_run = auto_runpod.control.runs()
    assert overlay_run.input["input_key"] == framing_run.input["output_key"]
    assert framing_run.input["output_key"] == f"working_videos/framing_{framing_id}.mp4"


async def test_healthz_reports_each_dependency(
    start_api: StartApi, runpod: RunningRunPodServer
) -> None:
    # RunPod's /health is read for the cluster once per interval, not per probe.
    api = start_api(runpod_health_interval_s=0.2)
    async with httpx.AsyncClient() as http:
        healthy = await http.get(f"{api.url}/healthz")
        assert healthy.status_code == 200
        checks = healthy.json()["checks"]
        assert checks["database"]["ok"] and checks["tracker"]["ok"] and checks["runpod"]["ok"]
        runpod.control.set_down("503")

        async def degraded() -> httpx.Response | None:
            answer = await http.get(f"{api.url}/healthz")
            return answer if answer.status_code == 503 else None

        answer = await eventually(degraded)
        assert answer.json()["checks"]["runpod"]["ok"] is False
        assert answer.json()["checks"]["database"]["ok"] is True
