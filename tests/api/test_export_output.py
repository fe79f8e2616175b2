"""`ExportJob.output`: what a finished export produced, and its poster frame.

Real exports of each kind run on the embedded local worker, with local storage
and with an S3-protocol server; the RunPod stand-in plays workers that report
less (exports finished before outputs were reported) or report something odd.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers.runpod_fake import RunningRunPodServer
from tests.support.app_server import RunningApp, StartLocal
from tests.support.assets import SeededAssets, seed_assets
from tests.support.exports import runpod_id_of, start_overlay, wait_for_status
from tests.support.graphql import GraphQLHTTP, GraphQLWebSocket, collect
from tests.support.posters import frame_shown, read_jpeg
from tests.support.queries import (
    GET_OUTPUT,
    LIST_OUTPUTS,
    START_ANNOTATE,
    START_FRAMING,
    START_OVERLAY,
    WATCH_OUTPUT,
    overlay_input,
)
from tests.support.source_video import FPS, HEIGHT, SECONDS, WIDTH

EXPORT_TIMEOUT_S = 90.0
REAL_HANDLER = "worker.handler:handler"


def framing(assets: SeededAssets) -> dict[str, Any]:
    return {
        "projectId": assets.project_id,
        "cropKeyframes": [
            {"time": 0, "x": 0, "y": 0, "width": 160, "height": 90},
            {"time": 2, "x": 160, "y": 90, "width": 160, "height": 90},
        ],
        "outputWidth": 240,
        "outputHeight": 136,
    }


def overlay(assets: SeededAssets) -> dict[str, Any]:
    return overlay_input(assets.project_id)


def annotate(assets: SeededAssets) -> dict[str, Any]:
    return {"gameId": assets.game_id, "clips": [{"startTime": 0.4, "endTime": 1.6, "name": "Goal"}]}


# kind: (mutation, its field, its input, the output's width, height and seconds)
KINDS = {
    "framing": (START_FRAMING, "startFramingExport", framing, 240, 136, SECONDS),
    "overlay": (START_OVERLAY, "startOverlayExport", overlay, WIDTH, HEIGHT, SECONDS),
    "annotate": (START_ANNOTATE, "startAnnotateExport", annotate, WIDTH, HEIGHT, 1.2),
}


@pytest.mark.parametrize("kind", KINDS)
async def test_a_finished_export_describes_its_video_and_serves_its_poster(
    start_local: StartLocal,
    storage_settings: dict[str, Any],
    source_video: Path,
    tmp_path: Path,
    kind: str,
) -> None:
    mutation, field, make_input, width, height, seconds = KINDS[kind]
    app = start_local(local_worker_handler=REAL_HANDLER, **storage_settings)
    content = await asyncio.to_thread(source_video.read_bytes)
    assets = await seed_assets(app.settings, "local", content=content)
    client = GraphQLHTTP(app.graphql_url)
    started = (await client.execute(mutation, {"input": make_input(assets)}))[field]
    assert started["userErrors"] == []
    job_id = started["job"]["id"]

    updates = await watch(app, job_id)
    listed = (await client.execute(LIST_OUTPUTS, {"first": 5}))["exportJobs"]["edges"]
    await client.aclose()

    *unfinished, final = updates
    assert final["status"] == "COMPLETE"
    assert unfinished and all(update["output"] is None for update in unfinished)
    output = final["output"]
    async with httpx.AsyncClient() as http:
        video, poster = await http.get(final["downloadUrl"]), await http.get(output["posterUrl"])
    assert {key: value for key, value in output.items() if key != "posterUrl"} == {
        "durationSeconds": seconds,
        "width": width,
        "height": height,
        "frameRate": float(FPS),
        "sizeBytes": len(video.content),
        "contentType": "video/mp4",
    }
    assert video.headers["content-type"] == "video/mp4"
    assert poster.status_code == 200
    assert poster.headers["content-type"] == "image/jpeg"
    picture = read_jpeg(poster.content)
    assert picture.shape == (height, width, 3)
    path = tmp_path / "export.mp4"
    await asyncio.to_thread(path.write_bytes, video.content)
    # The last frame starting within the first second: 0.96 s at 25 fps.
    assert await asyncio.to_thread(frame_shown, picture, path) == FPS - 1
    (node,) = (edge["node"] for edge in listed if edge["node"]["id"] == job_id)
    assert {**node["output"], "posterUrl": None} == {**output, "posterUrl": None}
    assert node["output"]["posterUrl"] is not None


async def watch(app: RunningApp, job_id: str) -> list[dict[str, Any]]:
    socket = await GraphQLWebSocket.connect(app.ws_url)
    try:
        delivered = await collect(
            socket.subscribe(WATCH_OUTPUT, {"id": job_id}), timeout=EXPORT_TIMEOUT_S
        )
    finally:
        await socket.close()
    return [update["exportJob"] for update in delivered]


# A COMPLETE export whose worker reported nothing usable: its key names its type.
NOTHING_REPORTED = {
    "durationSeconds": None,
    "width": None,
    "height": None,
    "frameRate": None,
    "sizeBytes": None,
    "contentType": "video/mp4",
    "posterUrl": None,
}


async def output_of(client: GraphQLHTTP, job_id: str) -> dict[str, Any] | None:
    job = (await client.execute(GET_OUTPUT, {"id": job_id}))["exportJob"]
    output: dict[str, Any] | None = job["output"]
    return output


async def complete_with(
    client: GraphQLHTTP, runpod: RunningRunPodServer, job_id: str, report: dict[str, Any]
) -> None:
    """The stand-in's run of the job ends COMPLETED with `report` as its output."""
    runpod_id = await runpod_id_of(runpod, job_id)
    await asyncio.to_thread(runpod.control.complete, runpod_id, report)
    await wait_for_status(client, job_id, "COMPLETE")


async def test_an_export_finished_before_outputs_were_reported_answers_with_what_is_known(
    client: GraphQLHTTP, runpod: RunningRunPodServer, assets: SeededAssets
) -> None:
    job_id = await start_overlay(client, assets.project_id)
    assert await output_of(client, job_id) is None

    # What workers reported before they measured frame rate and size or wrote posters.
    old_report = {
        "output_key": f"final_videos/overlay_{job_id}.mp4",
        "input_duration_s": 2.0,
        "duration_s": 2.0,
        "width": 320,
        "height": 180,
        "frames": 50,
    }
    await complete_with(client, runpod, job_id, old_report)

    assert await output_of(client, job_id) == {
        **NOTHING_REPORTED,
        "durationSeconds": 2.0,
        "width": 320,
        "height": 180,
    }


async def test_a_report_of_nothing_usable_leaves_every_figure_null(
    client: GraphQLHTTP, runpod: RunningRunPodServer, assets: SeededAssets
) -> None:
    job_id = await start_overlay(client, assets.project_id)

    odd_report = {
        "duration_s": "two seconds",
        "width": -320,
        "height": True,
        "frame_rate": 0,
        "size_bytes": 1.5,
        "content_type": "",
        # Another job's poster: the API signs URLs of this job's own poster only.
        "poster_key": "final_videos/overlay_someone-else.jpg",
    }
    await complete_with(client, runpod, job_id, odd_report)

    assert await output_of(client, job_id) == NOTHING_REPORTED


async def test_a_failed_export_has_no_output(
    client: GraphQLHTTP, runpod: RunningRunPodServer, assets: SeededAssets
) -> None:
    job_id = await start_overlay(client, assets.project_id)
    runpod_id = await runpod_id_of(runpod, job_id)

    await asyncio.to_thread(runpod.control.fail, runpod_id, "out of memory")
    await wait_for_status(client, job_id, "ERROR")

    assert await output_of(client, job_id) is None


async def test_the_stand_ins_report_and_poster_reach_the_api(
    client: GraphQLHTTP, auto_runpod: RunningRunPodServer, api: RunningApp, source_video: Path
) -> None:
    content = await asyncio.to_thread(source_video.read_bytes)
    assets = await seed_assets(api.settings, "local", content=content)

    job_id = await start_overlay(client, assets.project_id)
    await wait_for_status(client, job_id, "COMPLETE")

    output = await output_of(client, job_id)
    assert output is not None
    assert {key: value for key, value in output.items() if key != "posterUrl"} == {
        "durationSeconds": SECONDS,
        "width": WIDTH,
        "height": HEIGHT,
        "frameRate": float(FPS),
        "sizeBytes": len(content),
        "contentType": "video/mp4",
    }
    async with httpx.AsyncClient() as http:
        poster = await http.get(output["posterUrl"])
    assert read_jpeg(poster.content).shape == (HEIGHT, WIDTH, 3)
