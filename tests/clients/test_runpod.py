"""RunPodClient against the fake RunPod endpoint over real HTTP on loopback."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Literal

import aiohttp
import pytest

from clients.runpod import (
    RunPodClient,
    RunPodError,
    RunPodJob,
    RunPodJobNotFound,
    RunPodRejected,
    RunPodStatus,
    RunPodUnavailable,
    make_http_client,
)
from tests.servers.runpod_fake import RunningRunPodServer, StartRunPodServer

pytest_plugins = ["tests.servers.fixtures"]

ATTEMPTS = 4


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with make_http_client(read_timeout=0.5) as client:
        yield client


def make_client(
    http: aiohttp.ClientSession,
    server: RunningRunPodServer,
    *,
    api_key: str | None = None,
    attempts: int = ATTEMPTS,
    retry_timeout: float = 5.0,
    wait_max: float = 0.05,
) -> RunPodClient:
    """A client with short waits, so retry tests run in milliseconds."""
    return RunPodClient(
        http,
        server.url,
        api_key,
        attempts=attempts,
        retry_timeout=retry_timeout,
        wait_initial=0.01,
        wait_max=wait_max,
    )


@pytest.fixture
def client(http: aiohttp.ClientSession, runpod_server: RunningRunPodServer) -> RunPodClient:
    return make_client(http, runpod_server)


# --- happy paths ---


async def test_run_queues_the_input_and_returns_the_job_id(
    client: RunPodClient, runpod_server: RunningRunPodServer
) -> None:
    job = await client.run({"kind": "overlay", "output_key": "out/1.mp4"})

    assert job.status is RunPodStatus.IN_QUEUE
    [received] = runpod_server.control.runs()
    assert received.id == job.id
    assert received.input == {"kind": "overlay", "output_key": "out/1.mp4"}
    assert received.webhook is None


async def test_run_passes_the_webhook_url_in_the_body(
    client: RunPodClient, runpod_server: RunningRunPodServer
) -> None:
    await client.run({"kind": "framing"}, webhook="https://api.example/hooks/runpod/t0k3n")

    [received] = runpod_server.control.runs()
    assert received.webhook == "https://api.example/hooks/runpod/t0k3n"


async def test_status_returns_the_progress_payload_while_in_progress(
    client: RunPodClient, runpod_server: RunningRunPodServer
) -> None:
    job = await client.run({"kind": "overlay"})
    runpod_server.control.progress(job.id, 40, "encoding")

    observed = await client.status(job.id)

    assert observed.status is RunPodStatus.IN_PROGRESS
    assert observed.output == {"progress": 40, "message": "encoding"}
    assert observed.delay_time_ms is not None
    assert observed.execution_time_ms is not None


async def test_status_returns_output_of_a_completed_job(
    client: RunPodClient, runpod_server: RunningRunPodServer
) -> None:
    job = await client.run({"kind": "overlay"})
    runpod_server.control.complete(job.id, {"output_key": "out/1.mp4"})

    observed = await client.status(job.id)

    assert observed.status is RunPodStatus.COMPLETED
    assert observed.output == {"output_key": "out/1.mp4"}
    assert observed.error is None


async def test_status_returns_the_error_of_a_failed_job(
    client: RunPodClient, runpod_server: RunningRunPodServer
) -> None:
    job = await client.run({"kind": "overlay"})
    runpod_server.control.fail(job.id, "decoder crashed")

    observed = await client.status(job.id)

    assert observed.status is RunPodStatus.FAILED
    assert observed.error == "decoder crashed"


async def test_cancel_cancels_a_queued_job(
    client: RunPodClient, runpod_server: RunningRunPodServer
) -> None:
    job = await client.run({"kind": "overlay"})

    cancelled = await client.cancel(job.id)

    assert cancelled == RunPodJob(id=job.id, status=RunPodStatus.CANCELLED)
    assert (await client.status(job.id)).status is RunPodStatus.CANCELLED


async def test_cancel_leaves_a_finished_job_as_it_is(
    client: RunPodClient, runpod_server: RunningRunPodServer
) -> None:
    job = await client.run({"kind": "overlay"})
    runpod_server.control.complete(job.id, {"output_key": "k"})

    assert (await client.cancel(job.id)).status is RunPodStatus.COMPLETED


async def test_health_counts_jobs_by_state(
    client: RunPodClient, runpod_server: RunningRunPodServer
) -> None:
    await client.run({"kind": "overlay"})
    running = await client.run({"kind": "overlay"})
    runpod_server.control.progress(running.id, 20)

    health = await client.health()

    assert health["jobs"]["inQueue"] == 1
    assert health["jobs"]["inProgress"] == 1
    assert health["workers"]["running"] == 1


# --- answers that are not retried ---


@pytest.mark.parametrize("operation", ["status", "cancel"])
async def test_unknown_job_raises_job_not_found_without_retrying(
    client: RunPodClient, runpod_server: RunningRunPodServer, operation: Literal["status", "cancel"]
) -> None:
    with pytest.raises(RunPodJobNotFound, match="no-such-job"):
        await getattr(client, operation)("no-such-job")

    assert runpod_server.control.counts().job("no-such-job", operation) == 1


async def test_a_job_runpod_forgot_raises_job_not_found(
    client: RunPodClient, runpod_server: RunningRunPodServer
) -> None:
    job = await client.run({"kind": "overlay"})
    runpod_server.control.forget(job.id)

    with pytest.raises(RunPodJobNotFound):
        await client.status(job.id)


async def test_wrong_api_key_is_rejected_once_and_not_logged(
    http: aiohttp.ClientSession,
    start_runpod_server: StartRunPodServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = start_runpod_server(api_key="right-key")
    client = make_client(http, server, api_key="wrong-key")
    caplog.set_level(logging.DEBUG)

    with pytest.raises(RunPodRejected, match="401") as raised:
        await client.run({"kind": "overlay"})

    assert server.control.counts().route("run") == 1
    assert "wrong-key" not in str(raised.value)
    assert "RunPod rejected the request" in caplog.messages
    assert "wrong-key" not in caplog.text


async def test_right_api_key_is_sent_as_bearer_token(
    http: aiohttp.ClientSession, start_runpod_server: StartRunPodServer
) -> None:
    server = start_runpod_server(api_key="right-key")
    client = make_client(http, server, api_key="right-key")

    job = await client.run({"kind": "overlay"})

    assert (await client.status(job.id)).id == job.id


def test_unknown_status_in_an_answer_raises_runpod_error() -> None:
    with pytest.raises(RunPodError, match="EXPLODED"):
        RunPodJob.from_json({"id": "j1", "status": "EXPLODED"})


def test_from_json_reads_runpods_field_names() -> None:
    job = RunPodJob.from_json(
        {
            "id": "j1",
            "status": "FAILED",
            "delayTime": 1200,
            "executionTime": 3400.0,
            "error": {"error_type": "ValueError", "error_message": "bad clip"},
            "workerId": "w1",
        }
    )

    assert job.delay_time_ms == 1200
    assert job.execution_time_ms == 3400
    assert job.error == '{"error_type": "ValueError", "error_message": "bad clip"}'


@pytest.mark.parametrize("data", [{"status": "COMPLETED"}, {"id": "", "status": "IN_QUEUE"}, {}])
def test_from_json_rejects_an_answer_without_a_job(data: dict[str, str]) -> None:
    with pytest.raises(RunPodError):
        RunPodJob.from_json(data)


def test_running_is_read_as_in_progress() -> None:
    assert RunPodJob.from_json({"id": "j", "status": "RUNNING"}).status is RunPodStatus.IN_PROGRESS


# --- transient failures ---


async def test_429_is_retried_until_success(
    client: RunPodClient, runpod_server: RunningRunPodServer
) -> None:
    job = await client.run({"kind": "overlay"})
    runpod_server.control.inject("429", count=2, route="status")

    observed = await client.status(job.id)

    assert observed.status is RunPodStatus.IN_QUEUE
    assert runpod_server.control.counts().job(job.id, "status") == 3


async def test_a_burst_of_5xx_is_retried_and_the_job_is_queued_once(
    client: RunPodClient, runpod_server: RunningRunPodServer
) -> None:
    runpod_server.control.inject("500", route="run")
    runpod_server.control.inject("503", count=2, route="run")

    job = await client.run({"kind": "overlay"})

    assert runpod_server.control.counts().route("run") == 4
    assert [run.id for run in runpod_server.control.runs()] == [job.id]


async def test_persistent_503_raises_unavailable_after_the_configured_attempts(
    client: RunPodClient, runpod_server: RunningRunPodServer, caplog: pytest.LogCaptureFixture
) -> None:
    runpod_server.control.set_down("503")
    caplog.set_level(logging.WARNING, logger="clients.runpod")

    with pytest.raises(RunPodUnavailable, match="503"):
        await client.health()

    assert runpod_server.control.counts().route("health") == ATTEMPTS
    ours = [r for r in caplog.records if r.name == "clients.runpod"]
    assert [r.getMessage() for r in ours] == ["RunPod request failed"] * 4 + [
        "RunPod unavailable after retries"
    ]
    assert [getattr(r, "attempt", None) for r in ours[:4]] == [1, 2, 3, 4]
    assert {getattr(r, "action", None) for r in ours} == {"health"}


async def test_on_unavailable_hears_of_every_failed_attempt_and_nothing_else(
    http: aiohttp.ClientSession, runpod_server: RunningRunPodServer
) -> None:
    failed: list[int] = []
    client = RunPodClient(
        http,
        runpod_server.url,
        attempts=ATTEMPTS,
        wait_initial=0.01,
        wait_max=0.05,
        on_unavailable=lambda: failed.append(len(failed) + 1),
    )
    runpod_server.control.inject("503", count=2, route="run")
    job = await client.run({"kind": "overlay"})
    assert failed == [1, 2]

    with pytest.raises(RunPodJobNotFound):
        await client.status("no-such-job")
    await client.status(job.id)
    assert failed == [1, 2]


async def test_retries_stop_at_the_retry_timeout(
    http: aiohttp.ClientSession, runpod_server: RunningRunPodServer
) -> None:
    client = make_client(http, runpod_server, attempts=1000, retry_timeout=0.3)
    runpod_server.control.set_down("503")
    started = time.monotonic()

    with pytest.raises(RunPodUnavailable):
        await client.health()

    assert time.monotonic() - started < 2
    assert 1 < runpod_server.control.counts().route("health") < 1000


async def test_a_read_timeout_is_retried(
    client: RunPodClient, runpod_server: RunningRunPodServer
) -> None:
    job = await client.run({"kind": "overlay"})
    runpod_server.control.inject("delay", delay=1.0, route="status")

    assert (await client.status(job.id)).id == job.id
    assert runpod_server.control.counts().job(job.id, "status") == 2


async def test_read_timeouts_on_every_attempt_raise_unavailable(
    client: RunPodClient, runpod_server: RunningRunPodServer
) -> None:
    job = await client.run({"kind": "overlay"})
    runpod_server.control.inject("delay", delay=1.0, count=ATTEMPTS, route="status")

    with pytest.raises(RunPodUnavailable, match="timed out"):
        await client.status(job.id)

    assert runpod_server.control.counts().job(job.id, "status") == ATTEMPTS


async def test_a_dropped_connection_is_retried(
    client: RunPodClient, runpod_server: RunningRunPodServer
) -> None:
    runpod_server.control.inject("drop", route="health")

    health = await client.health()

    assert health["jobs"]["inQueue"] == 0
    assert runpod_server.control.counts().route("health") == 2


async def test_an_unreachable_endpoint_raises_unavailable(http: aiohttp.ClientSession) -> None:
    with RunningRunPodServer() as server:
        url = server.url
    client = RunPodClient(http, url, attempts=2, wait_initial=0.01, wait_max=0.01)

    with pytest.raises(RunPodUnavailable, match="cannot connect"):
        await client.health()


async def test_retry_after_sets_the_wait_before_the_next_attempt(
    http: aiohttp.ClientSession, runpod_server: RunningRunPodServer
) -> None:
    client = make_client(http, runpod_server, wait_max=2.0)
    runpod_server.control.inject("429", retry_after=1, route="health")
    started = time.monotonic()

    await client.health()

    assert time.monotonic() - started >= 1.0


async def test_retry_after_is_capped_at_wait_max(
    http: aiohttp.ClientSession, runpod_server: RunningRunPodServer
) -> None:
    client = make_client(http, runpod_server, wait_max=0.2)
    runpod_server.control.inject("503", retry_after=30, route="health")
    started = time.monotonic()

    await client.health()

    assert 0.2 <= time.monotonic() - started < 2
