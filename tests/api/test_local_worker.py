"""The whole loop on the embedded local worker: real API, real handler, real video.

No RUNPOD_ENDPOINT_URL is set, so the API starts its local worker and talks to
it over HTTP like any RunPod endpoint; outputs are decoded and checked pixel by
pixel, with local storage and with an S3-protocol server (R2 settings).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from clients.storage import open_storage
from tests.support.app_server import RunningApp, StartLocal, make_settings
from tests.support.assets import SeededAssets, seed_assets
from tests.support.graphql import GraphQLHTTP, GraphQLWebSocket, collect
from tests.support.held_exports import HeldExports
from tests.support.overlay_region import INSIDE_REGION, OUTSIDE_REGION, ellipse_masks, overlay
from tests.support.queries import (
    CANCEL,
    LIST_JOBS,
    START_ANNOTATE,
    START_FRAMING,
    START_OVERLAY,
    WATCH_JOB,
)
from tests.support.source_video import FPS, HEIGHT, SECONDS, WIDTH
from tests.support.video_checks import Decoded, counter, decode, mad
from tests.support.waiting import eventually
from worker.exports.caption import band_top

EXPORT_TIMEOUT_S = 90.0


async def start_export(app: RunningApp, mutation: str, field: str, input: dict[str, Any]) -> str:
    client = GraphQLHTTP(app.graphql_url)
    try:
        payload = (await client.execute(mutation, {"input": input}))[field]
    finally:
        await client.aclose()
    assert payload["userErrors"] == []
    return str(payload["job"]["id"])


async def watch(app: RunningApp, held: HeldExports, job_id: str) -> list[dict[str, Any]]:
    """Every state the subscription delivers, up to the terminal one; the job is
    released once an intermediate progress has been delivered."""

    async def updates() -> AsyncIterator[dict[str, Any]]:
        async for update in socket.subscribe(WATCH_JOB, {"id": job_id}):
            if 0 < update["exportJob"]["progress"] < 100:
                held.release(job_id)
            yield update

    socket = await GraphQLWebSocket.connect(app.ws_url)
    try:
        delivered = await collect(updates(), timeout=EXPORT_TIMEOUT_S)
    finally:
        await socket.close()
    return [update["exportJob"] for update in delivered]


async def run_to_completion(
    app: RunningApp,
    held: HeldExports,
    mutation: str,
    field: str,
    input: dict[str, Any],
    tmp_path: Path,
) -> tuple[list[dict[str, Any]], Decoded]:
    job_id = await start_export(app, mutation, field, input)
    updates = await watch(app, held, job_id)
    final = updates[-1]
    assert final["status"] == "COMPLETE", final
    assert final["progress"] == 100
    progress = [update["progress"] for update in updates]
    assert progress == sorted(progress)
    assert any(0 < value < 100 for value in progress), progress
    async with httpx.AsyncClient() as http:
        response = await http.get(final["downloadUrl"])
    assert response.status_code == 200
    path = tmp_path / f"{job_id}.mp4"
    path.write_bytes(response.content)
    return updates, decode(path)


def framing_rect(t: float) -> tuple[int, int]:
    """Top-left of the crop: (0, 0) at 0 s to (160, 90) at 2 s, on even pixels."""
    return round(80 * t) & ~1, round(45 * t) & ~1


FRAMING = {
    "cropKeyframes": [
        {"time": 0, "x": 0, "y": 0, "width": 160, "height": 90},
        {"time": 2, "x": 160, "y": 90, "width": 160, "height": 90},
    ],
}


def overlay_input(project_id: int, effect: str) -> dict[str, Any]:
    return {"projectId": project_id, **overlay(effect)}


async def seeded(app: RunningApp, video: Path) -> SeededAssets:
    content = await asyncio.to_thread(video.read_bytes)
    return await seed_assets(app.settings, "local", content=content)


async def test_framing_output_is_the_interpolated_crop_of_the_source(
    start_local: StartLocal,
    held: HeldExports,
    storage_settings: dict[str, Any],
    source_video: Path,
    tmp_path: Path,
) -> None:
    app = start_local(**storage_settings)
    assets = await seeded(app, source_video)

    _, out = await run_to_completion(
        app,
        held,
        START_FRAMING,
        "startFramingExport",
        {"projectId": assets.project_id, **FRAMING},
        tmp_path,
    )

    source = decode(source_video)
    assert out.frames[0].shape == (90, 160)
    assert abs(out.duration_s - SECONDS) <= 1 / FPS
    diffs, shifted = [], []
    for index, frame in enumerate(out.frames):
        x, y = framing_rect(index / FPS)
        diffs.append(mad(frame, source.frames[index][y : y + 90, x : x + 160]))
        dx, dy = (8 if x + 168 <= WIDTH else -8), (8 if y + 98 <= HEIGHT else -8)
        wrong = source.frames[index][y + dy : y + dy + 90, x + dx : x + dx + 160]
        shifted.append(mad(frame, wrong))
    assert max(diffs) < 4.0
    assert min(shifted) > 2 * max(diffs)  # the check tells an 8-pixel error apart


async def test_dark_overlay_darkens_outside_the_ellipse_during_its_region_only(
    start_local: StartLocal,
    held: HeldExports,
    storage_settings: dict[str, Any],
    source_video: Path,
    tmp_path: Path,
) -> None:
    app = start_local(**storage_settings)
    assets = await seeded(app, source_video)

    _, out = await run_to_completion(
        app,
        held,
        START_OVERLAY,
        "startOverlayExport",
        overlay_input(assets.project_id, "DARK_OVERLAY"),
        tmp_path,
    )

    source = decode(source_video)
    assert len(out.frames) == len(source.frames)
    for index in INSIDE_REGION:
        inside, outside = ellipse_masks(index)
        frame, original = out.frames[index], source.frames[index]
        assert frame[outside].mean() < 0.6 * original[outside].mean()
        assert mad(frame[inside], original[inside]) < 3.0
    for index in OUTSIDE_REGION:
        assert mad(out.frames[index], source.frames[index]) < 2.0


async def test_brightness_boost_brightens_inside_the_ellipse_only(
    start_local: StartLocal, held: HeldExports, source_video: Path, tmp_path: Path
) -> None:
    app = start_local()
    assets = await seeded(app, source_video)

    _, out = await run_to_completion(
        app,
        held,
        START_OVERLAY,
        "startOverlayExport",
        overlay_input(assets.project_id, "BRIGHTNESS_BOOST"),
        tmp_path,
    )

    source = decode(source_video)
    for index in INSIDE_REGION:
        inside, outside = ellipse_masks(index)
        frame, original = out.frames[index], source.frames[index]
        assert frame[inside].mean() > original[inside].mean() + 15
        assert mad(frame[outside], original[outside]) < 2.0
    for index in OUTSIDE_REGION:
        assert mad(out.frames[index], source.frames[index]) < 2.0


async def test_annotate_compiles_the_clips_with_captions_only_in_the_caption_band(
    start_local: StartLocal,
    held: HeldExports,
    storage_settings: dict[str, Any],
    source_video: Path,
    tmp_path: Path,
) -> None:
    app = start_local(**storage_settings)
    assets = await seeded(app, source_video)
    clips = [
        {"startTime": 1.2, "endTime": 1.8, "name": "Goal", "notes": "Top corner", "rating": 4},
        {"startTime": 0.4, "endTime": 1.0, "name": "Save", "notes": None, "rating": None},
    ]

    _, out = await run_to_completion(
        app,
        held,
        START_ANNOTATE,
        "startAnnotateExport",
        {"gameId": assets.game_id, "clips": clips},
        tmp_path,
    )

    source = decode(source_video)
    assert abs(out.duration_s - 1.2) <= 1 / FPS
    # The frame counter drawn into the source shows which frames were kept, in order.
    kept = [*range(30, 45), *range(10, 25)]
    assert [counter(frame) for frame in out.frames] == kept
    top = band_top(HEIGHT)
    for frame, index in zip(out.frames, kept, strict=True):
        assert mad(frame[: top - 4], source.frames[index][: top - 4]) < 2.0
        assert mad(frame[top:], source.frames[index][top:]) > 20.0
    assert out.audio_s is not None
    assert abs(out.audio_s - 1.2) < 0.05


async def test_overlay_runs_on_the_working_video_a_framing_export_produced(
    start_local: StartLocal,
    held: HeldExports,
    storage_settings: dict[str, Any],
    source_video: Path,
    tmp_path: Path,
) -> None:
    app = start_local(**storage_settings)
    assets = await seeded(app, source_video)
    _, framed = await run_to_completion(
        app,
        held,
        START_FRAMING,
        "startFramingExport",
        {"projectId": assets.project_id, **FRAMING, "outputWidth": 240, "outputHeight": 136},
        tmp_path,
    )

    _, final = await run_to_completion(
        app,
        held,
        START_OVERLAY,
        "startOverlayExport",
        overlay_input(assets.project_id, "ORIGINAL"),
        tmp_path,
    )

    # The overlay read the framing output (240x136), not the seeded 320x180 video.
    assert final.frames[0].shape == framed.frames[0].shape == (136, 240)
    assert len(final.frames) == len(framed.frames)
    assert max(mad(a, b) for a, b in zip(final.frames, framed.frames, strict=True)) < 2.0


async def test_bad_params_end_the_job_in_error_with_one_clear_line(
    start_local: StartLocal, held: HeldExports, source_video: Path
) -> None:
    app = start_local()
    assets = await seeded(app, source_video)
    late_clip = {"startTime": 5, "endTime": 6, "name": "After the final whistle"}

    job_id = await start_export(
        app, START_ANNOTATE, "startAnnotateExport", {"gameId": assets.game_id, "clips": [late_clip]}
    )

    final = (await watch(app, held, job_id))[-1]
    assert final["status"] == "ERROR"
    assert final["error"] == "clips[0].startTime is 5s, after the end of the video (2.000s)"
    assert final["downloadUrl"] is None
    assert not open_storage(app.settings.storage).exists(f"final_videos/annotate_{job_id}.mp4")


async def test_an_unreadable_input_ends_the_job_in_error(
    start_local: StartLocal, held: HeldExports
) -> None:
    app = start_local()
    assets = await seed_assets(app.settings, "local", content=b"these bytes are not a video")

    job_id = await start_export(
        app, START_FRAMING, "startFramingExport", {"projectId": assets.project_id, **FRAMING}
    )

    final = (await watch(app, held, job_id))[-1]
    assert final["status"] == "ERROR"
    assert final["error"].startswith("The input video could not be read")
    assert "\n" not in final["error"]


async def wait_until_processing(app: RunningApp, job_id: str) -> None:
    """Until the job reports progress: it is then held, running, until released."""
    socket = await GraphQLWebSocket.connect(app.ws_url)
    try:
        async for update in socket.subscribe(WATCH_JOB, {"id": job_id}):
            job = update["exportJob"]
            assert job["status"] in ("PENDING", "QUEUED", "PROCESSING"), job
            if job["status"] == "PROCESSING" and job["progress"] > 0:
                return
    finally:
        await socket.close()


async def test_cancel_mid_job_stops_the_handler_and_leaves_no_output(
    start_local: StartLocal, held: HeldExports, source_video: Path
) -> None:
    app = start_local()
    assets = await seeded(app, source_video)
    job_id = await start_export(
        app, START_FRAMING, "startFramingExport", {"projectId": assets.project_id, **FRAMING}
    )
    await asyncio.wait_for(wait_until_processing(app, job_id), EXPORT_TIMEOUT_S)

    client = GraphQLHTTP(app.graphql_url)
    payload = (await client.execute(CANCEL, {"id": job_id}))["cancelExport"]
    await client.aclose()

    assert payload["userErrors"] == []
    final = (await watch(app, held, job_id))[-1]
    assert final["status"] == "CANCELLED"
    await eventually(lambda: not handler_processes())
    assert not open_storage(app.settings.storage).exists(f"working_videos/framing_{job_id}.mp4")


def handler_processes() -> list[int]:
    """Pids of this process's children that run a local worker's handler."""
    pids = []
    for children in Path("/proc/self/task").glob("*/children"):
        for pid in children.read_text().split():
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
            except FileNotFoundError:
                continue
            if b"spawn_main" in command:
                pids.append(int(pid))
    return pids


async def test_a_crashed_handler_fails_its_job_and_the_worker_keeps_serving(
    start_local: StartLocal, held: HeldExports, source_video: Path, tmp_path: Path
) -> None:
    app = start_local()
    assets = await seeded(app, source_video)
    job_id = await start_export(
        app, START_FRAMING, "startFramingExport", {"projectId": assets.project_id, **FRAMING}
    )
    await asyncio.wait_for(wait_until_processing(app, job_id), EXPORT_TIMEOUT_S)

    (pid,) = handler_processes()
    os.kill(pid, signal.SIGKILL)

    final = (await watch(app, held, job_id))[-1]
    assert final["status"] == "ERROR"
    assert final["error"] == "worker process exited unexpectedly (killed by SIGKILL)"
    next_assets = await seeded(app, source_video)
    await run_to_completion(
        app,
        held,
        START_FRAMING,
        "startFramingExport",
        {"projectId": next_assets.project_id, **FRAMING},
        tmp_path,
    )


async def test_jobs_beyond_the_worker_concurrency_wait_in_queue(
    start_local: StartLocal, held: HeldExports, source_video: Path
) -> None:
    app = start_local(local_worker_concurrency=2)
    assets = await seeded(app, source_video)
    job_ids = [
        await start_export(
            app, START_FRAMING, "startFramingExport", {"projectId": assets.project_id, **FRAMING}
        )
        for _ in range(4)
    ]
    client = GraphQLHTTP(app.graphql_url)

    async def statuses() -> Counter[str]:
        page = (await client.execute(LIST_JOBS, {"first": 10}))["exportJobs"]
        return Counter(edge["node"]["status"] for edge in page["edges"])

    # The two running exports are held part-way, so the other two must wait.
    await eventually(lambda: _is(statuses(), {"PROCESSING": 2, "QUEUED": 2}), timeout=30)
    for job_id in job_ids:
        held.release(job_id)
    await eventually(lambda: _is(statuses(), {"COMPLETE": 4}), timeout=EXPORT_TIMEOUT_S)
    await client.aclose()

    assert len(set(job_ids)) == 4


async def _is(counts: Any, expected: dict[str, int]) -> bool:
    return dict(await counts) == expected


async def test_start_up_log_names_the_embedded_worker(
    start_local: StartLocal, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gql.app")

    app = start_local()

    assert app.settings.runpod_endpoint_url is None
    assert "exports run on the embedded local worker at http://127.0.0.1:" in caplog.text


async def test_without_an_endpoint_or_local_worker_exports_are_refused(
    start_local: StartLocal, source_video: Path
) -> None:
    app = start_local(local_worker=False)
    assets = await seeded(app, source_video)
    client = GraphQLHTTP(app.graphql_url)

    framing = {"projectId": assets.project_id, **FRAMING}
    data = await client.execute(START_FRAMING, {"input": framing})
    await client.aclose()

    payload = data["startFramingExport"]
    assert payload["job"] is None
    assert [error["code"] for error in payload["userErrors"]] == ["RUNPOD_NOT_CONFIGURED"]


def test_the_embedded_worker_gets_webhooks_over_loopback() -> None:
    assert (
        make_settings(host="0.0.0.0", port=8123).webhook_base_url
        == "http://127.0.0.1:8123/webhooks/runpod"
    )
    assert make_settings(port=8123, local_worker=False).webhook_base_url is None
    assert (
        make_settings(public_url="https://api.example.com/", port=1).webhook_base_url
        == "https://api.example.com/webhooks/runpod"
    )
