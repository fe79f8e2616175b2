"""Each start mutation, through the real API and a RunPod-compatible endpoint, to COMPLETE."""

from __future__ import annotations

import httpx
import pytest

from tests.servers.runpod_fake import RunningRunPodServer
from tests.support.app_server import RunningApp
from tests.support.assets import SeededAssets
from tests.support.graphql import PROTOCOLS, GraphQLHTTP, GraphQLWebSocket, Protocol, collect
from tests.support.queries import (
    START_ANNOTATE,
    START_FRAMING,
    START_OVERLAY,
    WATCH_JOB,
    annotate_input,
    framing_input,
    overlay_input,
)


@pytest.mark.parametrize(
    ("mutation", "field", "make_input", "kind", "input_attr", "output_prefix"),
    [
        (
            START_OVERLAY,
            "startOverlayExport",
            overlay_input,
            "OVERLAY",
            "working_key",
            "final_videos/overlay_",
        ),
        (
            START_FRAMING,
            "startFramingExport",
            framing_input,
            "FRAMING",
            "source_key",
            "working_videos/framing_",
        ),
        (
            START_ANNOTATE,
            "startAnnotateExport",
            annotate_input,
            "ANNOTATE",
            "game_key",
            "final_videos/annotate_",
        ),
    ],
)
async def test_export_runs_to_complete_and_output_downloads(
    api: RunningApp,
    client: GraphQLHTTP,
    assets: SeededAssets,
    auto_runpod: RunningRunPodServer,
    mutation: str,
    field: str,
    make_input: object,
    kind: str,
    input_attr: str,
    output_prefix: str,
) -> None:
    target = assets.game_id if kind == "ANNOTATE" else assets.project_id
    data = await client.execute(mutation, {"input": make_input(target)})  # type: ignore[operator]
    payload = data[field]
    assert payload["userErrors"] == []
    job = payload["job"]
    assert job["kind"] == kind
    assert job["status"] == "PENDING"
    assert job["downloadUrl"] is None

    socket = await GraphQLWebSocket.connect(api.ws_url)
    updates = await collect(socket.subscribe(WATCH_JOB, {"id": job["id"]}))
    await socket.close()

    final = updates[-1]["exportJob"]
    assert final["status"] == "COMPLETE"
    assert final["progress"] == 100
    (run,) = auto_runpod.control.runs()
    assert run.input["job_id"] == job["id"]
    assert run.input["type"] == kind.lower()
    assert run.input["input_key"] == getattr(assets, input_attr)
    assert run.input["output_key"] == f"{output_prefix}{job['id']}.mp4"
    async with httpx.AsyncClient() as http:
        download = await http.get(final["downloadUrl"])
    assert download.status_code == 200
    assert download.content == f"video bytes of {getattr(assets, input_attr)}".encode()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_subscription_sends_current_state_then_each_change_in_order_then_completes(
    api: RunningApp,
    client: GraphQLHTTP,
    assets: SeededAssets,
    runpod: RunningRunPodServer,
    protocol: Protocol,
) -> None:
    data = await client.execute(START_OVERLAY, {"input": overlay_input(assets.project_id)})
    job_id = data["startOverlayExport"]["job"]["id"]
    runpod_id = await _wait_submitted(runpod)

    socket = await GraphQLWebSocket.connect(api.ws_url, protocol)
    stream = socket.subscribe(WATCH_JOB, {"id": job_id})
    first = (await anext(stream))["exportJob"]
    assert first["id"] == job_id
    assert first["status"] in ("PENDING", "QUEUED")

    seen = [first]
    steps = [(10, "decoding"), (40, "encoding"), (90, "uploading")]
    for progress, message in steps:
        runpod.control.progress(runpod_id, progress, message)
        while seen[-1]["progress"] != progress:
            seen.append((await anext(stream))["exportJob"])
        assert seen[-1]["message"] == message
        assert seen[-1]["status"] == "PROCESSING"
    runpod.control.complete(runpod_id, {"output_key": "x"})
    seen.extend(item["exportJob"] for item in await collect(stream))
    await socket.close()

    assert seen[-1]["status"] == "COMPLETE"
    progresses = [item["progress"] for item in seen]
    assert progresses == sorted(progresses)
    assert [p for p in progresses if p in (10, 40, 90)][:3] == [10, 40, 90]


async def _wait_submitted(runpod: RunningRunPodServer, count: int = 1) -> str:
    import asyncio

    for _ in range(200):
        runs = runpod.control.runs()
        if len(runs) >= count:
            return runs[count - 1].id
        await asyncio.sleep(0.02)
    raise AssertionError("the job was never submitted to RunPod")
