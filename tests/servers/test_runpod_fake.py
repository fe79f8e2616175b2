"""The fake RunPod endpoint itself: scripted jobs, outputs, webhooks, purge, subprocess."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from clients.runpod import RunPodClient, RunPodJob, RunPodStatus, make_http_client
from clients.storage import StorageConfig, open_storage
from tests.servers.runpod_fake import RunningRunPodServer, RunPodServerProcess, StartRunPodServer
from tests.servers.runpod_models import Behaviour, Outcome
from tests.support.posters import frame_shown, read_jpeg
from tests.support.source_video import FPS, HEIGHT, SECONDS, WIDTH

pytest_plugins = ["tests.servers.fixtures"]


class WebhookReceiver:
    """Records the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/runpod"
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    webhook_receiver = WebhookReceiver()
    yield webhook_receiver
    webhook_receiver.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with make_http_client() as client:
        yield client


async def wait_for(check: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def follow(client: RunPodClient, job_id: str, within: float = 5.0) -> list[RunPodJob]:
    """Poll a job until it is terminal; every distinct answer, in order."""
    seen: list[RunPodJob] = []
    deadline = time.monotonic() + within
    while not seen or not seen[-1].status.is_terminal:
        assert time.monotonic() < deadline, f"job still {seen[-1].status}"
        job = await client.status(job_id)
        if not seen or (job.status, job.output) != (seen[-1].status, seen[-1].output):
            seen.append(job)
        await asyncio.sleep(0.005)
    return seen


async def test_auto_job_reports_progress_then_completes_with_a_copy_of_its_input(
    http: aiohttp.ClientSession, start_runpod_server: StartRunPodServer, tmp_path: Path
) -> None:
    config = StorageConfig(local_dir=tmp_path)
    storage = open_storage(config)
    (tmp_path / "in.mp4").write_bytes(b"original clip")
    storage.put_file("uploads/in.mp4", tmp_path / "in.mp4")
    server = start_runpod_server(behaviour=Behaviour(mode="auto", step=0.03), storage=config)
    client = RunPodClient(http, server.url)

    job = await client.run({"input_key": "uploads/in.mp4", "output_key": "exports/out.mp4"})
    seen = await follow(client, job.id)

    progress = [j.output["progress"] for j in seen if j.status is RunPodStatus.IN_PROGRESS]
    assert progress == [0, 20, 40, 60, 80, 100]
    assert seen[-1].status is RunPodStatus.COMPLETED
    # A few bytes are no video: only their size and type can be told.
    assert seen[-1].output == {
        "output_key": "exports/out.mp4",
        "size_bytes": 13,
        "content_type": "video/mp4",
    }
    assert (tmp_path / "exports/out.mp4").read_bytes() == b"original clip"


async def test_a_video_output_is_described_as_the_worker_does_with_its_poster(
    http: aiohttp.ClientSession,
    start_runpod_server: StartRunPodServer,
    source_video: Path,
    tmp_path: Path,
) -> None:
    config = StorageConfig(local_dir=tmp_path)
    open_storage(config).put_file("uploads/in.mp4", source_video)
    server = start_runpod_server(behaviour=Behaviour(mode="auto", step=0.001), storage=config)
    client = RunPodClient(http, server.url)

    job = await client.run(
        {
            "input_key": "uploads/in.mp4",
            "output_key": "exports/out.mp4",
            "poster_key": "exports/out.jpg",
        }
    )
    final = (await follow(client, job.id))[-1]

    source = await asyncio.to_thread(source_video.stat)
    assert final.status is RunPodStatus.COMPLETED
    assert final.output == {
        "output_key": "exports/out.mp4",
        "duration_s": SECONDS,
        "width": WIDTH,
        "height": HEIGHT,
        "frames": round(SECONDS * FPS),
        "frame_rate": float(FPS),
        "size_bytes": source.st_size,
        "content_type": "video/mp4",
        "poster_key": "exports/out.jpg",
    }
    poster = read_jpeg((tmp_path / "exports/out.jpg").read_bytes())
    assert poster.shape == (HEIGHT, WIDTH, 3)
    assert frame_shown(poster, tmp_path / "exports/out.mp4") == FPS - 1


async def test_auto_job_without_an_input_object_still_writes_an_output(
    http: aiohttp.ClientSession,
    start_runpod_server: StartRunPodServer,
    s3_storage_config: StorageConfig,
) -> None:
    server = start_runpod_server(
        behaviour=Behaviour(mode="auto", step=0.001), storage=s3_storage_config
    )
    client = RunPodClient(http, server.url)

    job = await client.run({"input_key": "missing.mp4", "output_key": "exports/out.mp4"})
    final = (await follow(client, job.id))[-1]

    assert final.status is RunPodStatus.COMPLETED
    assert open_storage(s3_storage_config).exists("exports/out.mp4")


@pytest.mark.parametrize(
    ("outcome", "error"), [("FAILED", "export failed on the worker"), ("TIMED_OUT", None)]
)
async def test_auto_job_can_end_badly_after_some_progress(
    http: aiohttp.ClientSession,
    runpod_server: RunningRunPodServer,
    outcome: Outcome,
    error: str | None,
) -> None:
    runpod_server.control.set_behaviour(step=0.03, outcome=outcome, fail_at=40)
    client = RunPodClient(http, runpod_server.url)

    job = await client.run({"output_key": "exports/out.mp4"})
    seen = await follow(client, job.id)

    assert [j.output["progress"] for j in seen[:-1] if j.output] == [0, 20, 40]
    assert (seen[-1].status, seen[-1].error) == (RunPodStatus(outcome), error)


async def test_cancel_stops_a_scripted_job(
    http: aiohttp.ClientSession, runpod_server: RunningRunPodServer
) -> None:
    runpod_server.control.set_behaviour(step=0.02)
    client = RunPodClient(http, runpod_server.url)
    job = await client.run({"output_key": "exports/out.mp4"})

    await client.cancel(job.id)
    await asyncio.sleep(0.2)

    assert (await client.status(job.id)).status is RunPodStatus.CANCELLED


async def test_terminal_state_set_by_control_posts_the_status_json_and_input_to_the_webhook(
    http: aiohttp.ClientSession, runpod_server: RunningRunPodServer, receiver: WebhookReceiver
) -> None:
    client = RunPodClient(http, runpod_server.url)
    job = await client.run({"output_key": "k"}, webhook=receiver.url)

    runpod_server.control.complete(job.id, {"output_key": "k"})
    await wait_for(lambda: bool(receiver.bodies))

    [body] = receiver.bodies
    assert RunPodJob.from_json(body).status is RunPodStatus.COMPLETED
    assert body["output"] == {"output_key": "k"}
    assert body == runpod_server.control.job(job.id).webhook_json
    assert body == {**runpod_server.control.job(job.id).status_json, "input": {"output_key": "k"}}
    [delivery] = runpod_server.control.webhook_deliveries()
    assert (delivery.job_id, delivery.status_code) == (job.id, 200)


async def test_scripted_completion_posts_the_webhook(
    http: aiohttp.ClientSession, runpod_server: RunningRunPodServer, receiver: WebhookReceiver
) -> None:
    runpod_server.control.set_behaviour(step=0.001)
    job = await RunPodClient(http, runpod_server.url).run({"output_key": "k"}, webhook=receiver.url)

    await wait_for(lambda: bool(receiver.bodies))

    assert [(b["id"], b["status"]) for b in receiver.bodies] == [(job.id, "COMPLETED")]


async def test_webhooks_can_be_switched_off_and_fired_by_hand(
    http: aiohttp.ClientSession, runpod_server: RunningRunPodServer, receiver: WebhookReceiver
) -> None:
    control = runpod_server.control
    control.set_webhooks(False)
    job = await RunPodClient(http, runpod_server.url).run({}, webhook=receiver.url)
    control.fail(job.id, "boom")
    await asyncio.sleep(0.1)
    assert receiver.bodies == []

    delivery = await asyncio.to_thread(control.fire_webhook, job.id, wait=True)

    assert delivery is not None
    assert delivery.status_code == 200
    assert receiver.bodies == [control.job(job.id).webhook_json]


async def test_a_change_can_fire_the_webhook_whatever_the_status(
    http: aiohttp.ClientSession, runpod_server: RunningRunPodServer, receiver: WebhookReceiver
) -> None:
    control = runpod_server.control
    job = await RunPodClient(http, runpod_server.url).run({}, webhook=receiver.url)
    control.set_job(job.id, "IN_PROGRESS", output={"progress": 40}, notify=True)
    await wait_for(lambda: bool(receiver.bodies))
    control.set_job(job.id, "COMPLETED", output={"progress": 100}, notify=True)
    await wait_for(lambda: len(receiver.bodies) == 2)

    assert [(b["status"], b["output"]) for b in receiver.bodies] == [
        ("IN_PROGRESS", {"progress": 40}),
        ("COMPLETED", {"progress": 100}),
    ]
    await asyncio.sleep(0.1)
    assert len(receiver.bodies) == 2, "a terminal change with notify fires once"


async def test_purge_queue_removes_only_queued_jobs(
    http: aiohttp.ClientSession, runpod_server: RunningRunPodServer
) -> None:
    client = RunPodClient(http, runpod_server.url)
    queued = await client.run({})
    running = await client.run({})
    runpod_server.control.progress(running.id, 20)

    async with http.post(f"{runpod_server.url}/purge-queue") as response:
        answer = await response.json()

    assert answer == {"removed": 1, "status": "completed"}
    assert [j.id for j in runpod_server.control.jobs() if not j.forgotten] == [running.id]
    assert (await client.health())["jobs"]["inQueue"] == 0
    assert runpod_server.control.job(queued.id).forgotten


async def test_faults_are_used_up_and_reset_clears_everything(
    http: aiohttp.ClientSession, runpod_server: RunningRunPodServer
) -> None:
    control = runpod_server.control
    control.inject("500", count=2, route="cancel")
    await http.get(f"{runpod_server.url}/health")
    assert [f.count for f in control.faults()] == [2]

    control.reset()

    assert control.faults() == []
    assert control.counts().routes == {}
    assert control.jobs() == []


def test_runs_as_a_separate_process_that_can_be_killed_and_restarted() -> None:
    with RunPodServerProcess("--api-key", "k") as server:
        assert server.control is not None
        unauthorised = httpx.get(f"{server.url}/health")
        health = httpx.get(f"{server.url}/health", headers={"Authorization": "Bearer k"})
        counts = server.control.counts()
        server.kill()
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{server.url}/health")
        server.start()
        restarted = server.control.counts()

    assert server.url.endswith("/v2/test-endpoint")
    assert unauthorised.status_code == 401
    assert health.json()["jobs"]["inQueue"] == 0
    assert counts.route("health") == 2
    assert restarted.route("health") == 0
