"""The local RunPod-compatible endpoint over real HTTP, with handlers in real processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from clients.storage import LocalStorage, StorageConfig
from gql.demo.media import make_video
from tests.support.worker_jobs import job_input
from worker.local_endpoint import default_concurrency
from worker.local_server import LocalEndpoint

SCRIPTED = "tests.worker.endpoint_handlers:scripted"
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}

StartEndpoint = Callable[..., Awaitable[LocalEndpoint]]


@pytest.fixture
def storage_root(tmp_path: Path) -> Path:
    return tmp_path / "storage"


@pytest.fixture
async def start_endpoint(storage_root: Path) -> AsyncIterator[StartEndpoint]:
    started: list[LocalEndpoint] = []

    async def start(**options: Any) -> LocalEndpoint:
        options.setdefault("handler", SCRIPTED)
        options.setdefault("concurrency", 2)
        endpoint = LocalEndpoint(storage_config=StorageConfig(local_dir=storage_root), **options)
        await endpoint.start()
        started.append(endpoint)
        return endpoint

    yield start
    for endpoint in started:
        await endpoint.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def run_job(http: httpx.AsyncClient, endpoint: LocalEndpoint, body: dict[str, Any]) -> str:
    response = await http.post(f"{endpoint.url}/run", json=body)
    assert response.status_code == 200
    assert response.json()["status"] == "IN_QUEUE"
    return str(response.json()["id"])


async def status(http: httpx.AsyncClient, endpoint: LocalEndpoint, job_id: str) -> dict[str, Any]:
    response = await http.get(f"{endpoint.url}/status/{job_id}")
    assert response.status_code == 200
    return dict(response.json())


async def wait_until(
    http: httpx.AsyncClient,
    endpoint: LocalEndpoint,
    job_id: str,
    done: Callable[[dict[str, Any]], bool],
    within_s: float = 30.0,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Poll /status every 20 ms until `done(body)`; the last body and all bodies seen."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        body = await status(http, endpoint, job_id)
        seen.append(body)
        if done(body):
            return body, seen
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} never got there; last status {seen[-1:]}")


def finished(body: dict[str, Any]) -> bool:
    return body["status"] in TERMINAL


async def wait_for_exit(pid: int, within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"process {pid} still exists")


async def test_export_runs_queued_then_in_progress_with_progress_then_completed(
    start_endpoint: StartEndpoint, http: httpx.AsyncClient, storage_root: Path, tmp_path: Path
) -> None:
    video = make_video(tmp_path / "game.mp4", width=640, height=360, seconds=6.0)
    LocalStorage(storage_root).put_file("games/game.mp4", video)
    endpoint = await start_endpoint(handler="worker.handler:handler")
    crop = {"time": 0, "x": 0, "y": 0, "width": 320, "height": 180}
    params = {"cropKeyframes": [crop], "outputWidth": 640, "outputHeight": 360}

    job_id = await run_job(http, endpoint, {"input": job_input("framing", params)})
    final, seen = await wait_until(http, endpoint, job_id, finished)

    progress = [
        b["output"]["progress"] for b in seen if b["status"] == "IN_PROGRESS" and "output" in b
    ]
    assert progress
    assert progress == sorted(progress)
    assert final["status"] == "COMPLETED", final
    assert final["output"] == {
        "output_key": "exports/out.mp4",
        "input_duration_s": 6.0,
        "duration_s": 6.0,
        "width": 640,
        "height": 360,
        "frames": 150,
        "frame_rate": 25.0,
        "size_bytes": (storage_root / "exports/out.mp4").stat().st_size,
        "content_type": "video/mp4",
        "poster_key": "exports/out.jpg",
    }
    assert final["delayTime"] >= 0
    assert final["executionTime"] > 0
    assert LocalStorage(storage_root).exists("exports/out.mp4")


async def test_bad_params_fail_the_job_with_the_handler_message(
    start_endpoint: StartEndpoint, http: httpx.AsyncClient
) -> None:
    endpoint = await start_endpoint(handler="worker.handler:handler")

    job_id = await run_job(http, endpoint, {"input": job_input("zoom", {})})
    final, _ = await wait_until(http, endpoint, job_id, finished)

    assert final["status"] == "FAILED"
    assert (
        final["error"] == "unknown export type 'zoom'; expected one of annotate, framing, overlay"
    )


async def test_cancel_kills_the_running_handler_and_no_output_appears(
    start_endpoint: StartEndpoint, http: httpx.AsyncClient, storage_root: Path, tmp_path: Path
) -> None:
    endpoint = await start_endpoint()
    pid_file = tmp_path / "pid"
    task = {"action": "sleep", "seconds": 10, "pid_file": str(pid_file), "output_key": "out/x"}

    job_id = await run_job(http, endpoint, {"input": task})
    await wait_until(http, endpoint, job_id, lambda b: "output" in b)
    response = await http.post(f"{endpoint.url}/cancel/{job_id}")

    assert response.json() == {"id": job_id, "status": "CANCELLED"}
    await wait_for_exit(int(pid_file.read_text()))
    final = await status(http, endpoint, job_id)
    assert final["status"] == "CANCELLED"
    assert "output" not in final
    assert not LocalStorage(storage_root).exists("out/x")


async def test_cancelling_a_queued_job_means_it_never_runs(
    start_endpoint: StartEndpoint, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    endpoint = await start_endpoint(concurrency=1)
    blocker = await run_job(http, endpoint, {"input": {"action": "sleep", "seconds": 1}})
    pid_file = tmp_path / "pid"
    queued = await run_job(
        http, endpoint, {"input": {"action": "sleep", "seconds": 1, "pid_file": str(pid_file)}}
    )

    response = await http.post(f"{endpoint.url}/cancel/{queued}")
    await wait_until(http, endpoint, blocker, finished)

    assert response.json()["status"] == "CANCELLED"
    assert (await status(http, endpoint, queued))["status"] == "CANCELLED"
    assert not pid_file.exists()


async def test_a_crashing_handler_fails_its_job_and_the_next_job_completes(
    start_endpoint: StartEndpoint, http: httpx.AsyncClient
) -> None:
    endpoint = await start_endpoint(concurrency=1)

    crashed = await run_job(http, endpoint, {"input": {"action": "crash"}})
    after = await run_job(http, endpoint, {"input": {"action": "echo", "n": 1}})
    crash_status, _ = await wait_until(http, endpoint, crashed, finished)
    after_status, _ = await wait_until(http, endpoint, after, finished)

    assert crash_status["status"] == "FAILED"
    assert crash_status["error"] == "worker process exited unexpectedly (exit code 3)"
    assert after_status["status"] == "COMPLETED"
    assert after_status["output"] == {"echo": {"action": "echo", "n": 1}}


async def test_a_raising_handler_fails_with_its_message(
    start_endpoint: StartEndpoint, http: httpx.AsyncClient
) -> None:
    endpoint = await start_endpoint()

    job_id = await run_job(http, endpoint, {"input": {"action": "raise", "message": "no\nway"}})
    final, _ = await wait_until(http, endpoint, job_id, finished)

    assert final["status"] == "FAILED"
    assert final["error"] == "ValueError: no way"


async def test_jobs_beyond_the_concurrency_wait_in_queue(
    start_endpoint: StartEndpoint, http: httpx.AsyncClient
) -> None:
    endpoint = await start_endpoint(concurrency=2)
    ids = [
        await run_job(http, endpoint, {"input": {"action": "sleep", "seconds": 1.5}})
        for _ in range(4)
    ]

    await wait_until(http, endpoint, ids[1], lambda b: b["status"] == "IN_PROGRESS")
    statuses = [(await status(http, endpoint, job_id))["status"] for job_id in ids]
    health = (await http.get(f"{endpoint.url}/health")).json()

    assert statuses == ["IN_PROGRESS", "IN_PROGRESS", "IN_QUEUE", "IN_QUEUE"]
    assert health == {
        "jobs": {"completed": 0, "failed": 0, "inProgress": 2, "inQueue": 2, "retried": 0},
        "workers": {"idle": 0, "running": 2},
    }
    for job_id in ids:
        final, _ = await wait_until(http, endpoint, job_id, finished)
        assert final["status"] == "COMPLETED"
    health = (await http.get(f"{endpoint.url}/health")).json()
    assert health["jobs"]["completed"] == 4
    assert health["workers"] == {"idle": 2, "running": 0}


async def test_execution_timeout_times_the_job_out_and_kills_it(
    start_endpoint: StartEndpoint, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    endpoint = await start_endpoint()
    pid_file = tmp_path / "pid"
    task = {"action": "sleep", "seconds": 10, "pid_file": str(pid_file)}

    job_id = await run_job(http, endpoint, {"input": task, "policy": {"executionTimeout": 800}})
    final, _ = await wait_until(http, endpoint, job_id, finished)

    assert final["status"] == "TIMED_OUT"
    assert final["error"] == "execution timeout of 0.8s exceeded"
    if pid_file.exists():  # on a loaded machine the handler may not have started yet
        await wait_for_exit(int(pid_file.read_text()))


async def test_webhook_receives_the_final_status(
    start_endpoint: StartEndpoint, http: httpx.AsyncClient
) -> None:
    endpoint = await start_endpoint()
    async with WebhookReceiver() as receiver:
        job_id = await run_job(
            http, endpoint, {"input": {"action": "echo"}, "webhook": receiver.url}
        )
        final, _ = await wait_until(http, endpoint, job_id, finished)
        body = await asyncio.wait_for(receiver.received.get(), timeout=10)

    assert body == final
    assert body["status"] == "COMPLETED"


async def test_unknown_jobs_are_404(start_endpoint: StartEndpoint, http: httpx.AsyncClient) -> None:
    endpoint = await start_endpoint()

    assert (await http.get(f"{endpoint.url}/status/nope")).status_code == 404
    assert (await http.post(f"{endpoint.url}/cancel/nope")).status_code == 404
    other_endpoint = endpoint.url.replace("/v2/local", "/v2/other")
    assert (await http.get(f"{other_endpoint}/health")).status_code == 404


async def test_bad_run_bodies_are_400(
    start_endpoint: StartEndpoint, http: httpx.AsyncClient
) -> None:
    endpoint = await start_endpoint()

    for body in [b"not json", b"[1]", b"{}", b'{"input": {}, "policy": {"executionTimeout": -1}}']:
        response = await http.post(f"{endpoint.url}/run", content=body)
        assert response.status_code == 400, body
        assert "error" in response.json()


async def test_api_key_is_required_when_configured(
    start_endpoint: StartEndpoint, http: httpx.AsyncClient
) -> None:
    endpoint = await start_endpoint(api_key="s3cret")

    assert (await http.get(f"{endpoint.url}/health")).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert (await http.get(f"{endpoint.url}/health", headers=wrong)).status_code == 401
    right = {"Authorization": "Bearer s3cret"}
    assert (await http.get(f"{endpoint.url}/health", headers=right)).status_code == 200


async def test_stopping_the_endpoint_kills_running_handlers(
    start_endpoint: StartEndpoint, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    endpoint = await start_endpoint()
    pid_file = tmp_path / "pid"
    task = {"action": "sleep", "seconds": 10, "pid_file": str(pid_file)}
    job_id = await run_job(http, endpoint, {"input": task})
    await wait_until(http, endpoint, job_id, lambda b: "output" in b)

    await endpoint.stop()

    await wait_for_exit(int(pid_file.read_text()))


async def test_standalone_server_serves_until_terminated(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = (
        "from worker.local_server import serve_local_endpoint; "
        f"serve_local_endpoint('127.0.0.1', {port})"
    )
    env = {**os.environ, "STORAGE_DIR": str(tmp_path), "PYTHONPATH": str(Path.cwd())}
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            for _ in range(200):
                with contextlib.suppress(httpx.TransportError):
                    response = await http.get(f"http://127.0.0.1:{port}/v2/local/health")
                    break
                await asyncio.sleep(0.05)
        assert response.status_code == 200
        assert response.json()["workers"]["running"] == 0
    finally:
        server.terminate()
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert await asyncio.wait_for(server.wait(), timeout=10) in {0, -signal.SIGTERM}


def test_concurrency_comes_from_the_environment() -> None:
    assert default_concurrency({"LOCAL_WORKER_CONCURRENCY": "3"}) == 3
    assert default_concurrency({}) == max(1, (os.cpu_count() or 1) // 2)
    with pytest.raises(ValueError, match="LOCAL_WORKER_CONCURRENCY"):
        default_concurrency({"LOCAL_WORKER_CONCURRENCY": "zero"})


class WebhookReceiver:
    """A one-route HTTP server on a free loopback port that records POSTed JSON."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])
        self._server = _QuietServer(uvicorn.Config(app, log_config=None, lifespan="off"))
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}/hook"
        self._task: asyncio.Task[None] | None = None

    async def _hook(self, request: Request) -> JSONResponse:
        await self.received.put(await request.json())
        return JSONResponse({"ok": True})

    async def __aenter__(self) -> WebhookReceiver:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        await self._server.ready.wait()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._server.should_exit = True
        assert self._task is not None
        await self._task


class _QuietServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self.ready.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
