"""The fake RunPod endpoint's service shape: rate limits, request accounting, the
worker pool, execution policy and input-driven run lengths.

Every check goes through real HTTP, except the gate's window arithmetic, checked
on explicit times. No test bounds elapsed time from above: slow machines only
make waits longer, never outcomes different.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from tests.servers.runpod_control import RunPodControl
from tests.servers.runpod_fake import RunningRunPodServer, RunPodServerProcess, StartRunPodServer
from tests.servers.runpod_limits import RouteGate, busiest_window
from tests.servers.runpod_models import RUNPOD_LIMITS, JobView, Limits, RouteLimit

pytest_plugins = ["tests.servers.fixtures"]

LONG = 600.0
"""A window or step no test outlasts: what happens inside it cannot depend on speed."""


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30.0) as client:
        yield client


async def wait_until(check: Callable[[], bool], within: float = 30.0) -> None:
    """Poll `check` (which may call the blocking control client) until it holds."""
    deadline = time.monotonic() + within
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def submit(
    http: httpx.AsyncClient, server: RunningRunPodServer, job_input: dict[str, Any] | None = None
) -> str:
    response = await http.post(f"{server.url}/run", json={"input": job_input or {}})
    response.raise_for_status()
    return str(response.json()["id"])


def statuses(control: RunPodControl, ids: list[str]) -> list[str]:
    views = {view.id: view for view in control.jobs()}
    return [views[job_id].status for job_id in ids]


# --- rate limits ---


def test_the_gate_counts_a_sliding_window_and_says_when_a_slot_frees() -> None:
    gate = RouteGate(RouteLimit(requests=5, window_s=10.0))
    accepted = [gate.admit(at) for at in (0.0, 1.0, 2.0, 3.0, 4.0)]
    refused = gate.admit(5.0)

    assert accepted == [None] * 5
    assert refused is not None
    assert refused == pytest.approx(5.0), "the request at 0.0 leaves the window at 10.0"
    assert gate.refusal(refused) == ("rate limit exceeded: more than 5 requests in 10 s", 5)
    assert gate.admit(10.0) is None, "the window slid past 0.0: a slot is free"
    assert gate.admit(10.5) == pytest.approx(0.5), "1.0 leaves at 11.0"
    assert gate.refusal(0.5)[1] == 1, "Retry-After is at least one second"


def test_busiest_window_counts_the_fullest_trailing_window() -> None:
    times = [0.0, 1.0, 2.0, 10.0, 10.5, 11.0, 11.2]

    assert busiest_window(times, 10.0) == 5  # (1.2, 11.2]
    assert busiest_window(times, 1.0) == 3  # (10.2, 11.2]
    assert busiest_window([], 10.0) == 0


async def test_a_sliding_window_on_the_status_fast_path_answers_429_with_retry_after(
    http: httpx.AsyncClient, start_runpod_server: StartRunPodServer
) -> None:
    limits = {"status": RouteLimit(requests=5, window_s=LONG)}
    server = start_runpod_server(limits=limits)
    job_id = await submit(http, server)

    answers = [await http.get(f"{server.url}/status/{job_id}") for _ in range(6)]
    health = await http.get(f"{server.url}/health")

    assert [a.status_code for a in answers] == [200] * 5 + [429]
    throttled = answers[-1]
    assert 1 <= int(throttled.headers["Retry-After"]) <= LONG
    assert "rate limit exceeded" in throttled.json()["error"]
    assert health.status_code == 200, "other routes keep their own (here no) limit"
    counts = server.control.counts()
    assert (counts.route("status"), counts.job(job_id)) == (6, 6)
    assert (counts.accepted_count("status"), counts.throttled_count("status")) == (5, 1)
    assert (counts.accepted_count("run"), counts.throttled_count("run")) == (1, 0)


async def test_the_concurrency_cap_refuses_requests_past_those_in_flight(
    http: httpx.AsyncClient, runpod_server: RunningRunPodServer
) -> None:
    control = runpod_server.control
    control.set_limits({"health": RouteLimit(concurrency=2)})
    health = f"{runpod_server.url}/health"
    sequential = [(await http.get(health)).status_code for _ in range(4)]
    control.inject("delay", count=2, route="health", delay=LONG)

    held = [asyncio.create_task(http.get(health)) for _ in range(2)]
    await wait_until(lambda: control.counts().accepted_count("health") == 6)
    refused = await http.get(health)
    for task in held:
        task.cancel()

    assert sequential == [200] * 4, "a request answered gives its slot back"
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    assert refused.json() == {"error": "rate limit exceeded: more than 2 requests at once"}
    assert control.counts().throttled_count("health") == 1


async def test_limits_change_at_run_time_and_reset_restores_the_start_ones(
    http: httpx.AsyncClient, start_runpod_server: StartRunPodServer
) -> None:
    server = start_runpod_server(limits={"purge-queue": RouteLimit(requests=1, window_s=LONG)})
    control = server.control
    purge = f"{server.url}/purge-queue"
    first, second = [(await http.post(purge)).status_code for _ in range(2)]

    control.set_limits(None)
    unlimited = [(await http.post(purge)).status_code for _ in range(3)]
    assert control.set_limits("runpod") == RUNPOD_LIMITS
    control.reset()

    assert (first, second) == (200, 429)
    assert unlimited == [200] * 3
    assert control.limits().routes == {"purge-queue": RouteLimit(requests=1, window_s=LONG)}
    assert (await http.post(purge)).status_code == 200, "reset also emptied the window"


def test_the_process_takes_limits_and_workers_on_its_command_line() -> None:
    limits = Limits(routes={"cancel": RouteLimit(requests=1, window_s=LONG)})
    with (
        RunPodServerProcess(limits="runpod", workers=3) as preset,
        RunPodServerProcess(limits=limits) as custom,
    ):
        assert preset.control is not None and custom.control is not None
        preset_limits, preset_workers = preset.control.limits(), preset.control.workers()
        cancels = [httpx.post(f"{custom.url}/cancel/nope").status_code for _ in range(2)]
        custom_workers = custom.control.workers()

    assert preset_limits == RUNPOD_LIMITS
    assert RUNPOD_LIMITS.routes["status"] == RouteLimit(
        requests=2000, window_s=10.0, concurrency=400
    )
    assert (preset_workers, custom_workers) == (3, None)
    assert cancels == [404, 429], "the unknown job's 404 still counted in the window"


# --- request accounting ---


async def test_busiest_window_reports_the_accepted_requests_limits_on_or_off(
    http: httpx.AsyncClient, runpod_server: RunningRunPodServer
) -> None:
    control = runpod_server.control
    health = f"{runpod_server.url}/health"
    for _ in range(7):
        await http.get(health)
    unlimited = control.busiest_window("health", window_s=LONG)
    narrow = control.busiest_window("health", window_s=1e-9)

    control.reset_counts()
    control.set_limits({"health": RouteLimit(requests=3, window_s=LONG)})
    for _ in range(5):
        await http.get(health)

    assert (unlimited, narrow) == (7, 1)
    assert control.busiest_window("health", window_s=LONG) == 3
    assert control.busiest_window("status") == 0
    counts = control.counts()
    assert (counts.route("health"), counts.accepted_count("health")) == (5, 3)


# --- the worker pool ---


async def test_a_pool_runs_queued_jobs_first_in_first_out_and_health_counts_them(
    http: httpx.AsyncClient, start_runpod_server: StartRunPodServer
) -> None:
    server = start_runpod_server(workers=2)
    control = server.control
    control.set_behaviour(step=LONG, queue_delay=0)  # running jobs stay running
    ids = [await submit(http, server) for _ in range(4)]
    await wait_until(lambda: statuses(control, ids)[:2] == ["IN_PROGRESS"] * 2)
    full = (await http.get(f"{server.url}/health")).json()

    await http.post(f"{server.url}/cancel/{ids[0]}")
    third_started = statuses(control, ids)
    control.set_workers(4)
    grown = statuses(control, ids)
    health = (await http.get(f"{server.url}/health")).json()

    assert statuses(control, ids) == ["CANCELLED", "IN_PROGRESS", "IN_PROGRESS", "IN_PROGRESS"]
    assert (full["jobs"]["inProgress"], full["jobs"]["inQueue"]) == (2, 2)
    assert (full["workers"]["running"], full["workers"]["idle"]) == (2, 0)
    assert third_started == ["CANCELLED", "IN_PROGRESS", "IN_PROGRESS", "IN_QUEUE"]
    assert grown[3] == "IN_PROGRESS", "a larger pool starts the queued job at once"
    assert (health["workers"]["running"], health["workers"]["idle"]) == (3, 1)


async def test_a_one_worker_pool_runs_jobs_one_after_another_in_submission_order(
    http: httpx.AsyncClient, start_runpod_server: StartRunPodServer
) -> None:
    server = start_runpod_server(workers=1)
    server.control.set_behaviour(step=0.005, queue_delay=0, steps=2)
    ids = [await submit(http, server) for _ in range(4)]

    await wait_until(lambda: statuses(server.control, ids) == ["COMPLETED"] * 4)

    jobs = [server.control.job(job_id) for job_id in ids]
    for earlier, later in itertools.pairwise(jobs):
        assert _started(later) >= _finished(earlier)


async def test_manual_moves_ignore_the_pool_but_hold_its_workers(
    http: httpx.AsyncClient, start_runpod_server: StartRunPodServer
) -> None:
    server = start_runpod_server(workers=0)
    control = server.control
    control.set_behaviour(step=LONG, queue_delay=0)
    scripted = await submit(http, server)
    control.set_behaviour("manual")
    by_hand = await submit(http, server)
    assert control.job(scripted).started_at is None

    control.progress(by_hand, 10)
    control.set_workers(1)
    still_queued = control.job(scripted).status
    control.complete(by_hand)
    health = (await http.get(f"{server.url}/health")).json()

    assert still_queued == "IN_QUEUE", "the job moved by hand held the only worker"
    assert control.job(scripted).status == "IN_PROGRESS", "its completion freed it at once"
    assert control.job(scripted).started_at is not None
    assert (health["jobs"]["inProgress"], health["jobs"]["completed"]) == (1, 1)


async def test_without_a_pool_health_keeps_reporting_two_workers(
    http: httpx.AsyncClient, runpod_server: RunningRunPodServer
) -> None:
    job_id = await submit(http, runpod_server)
    runpod_server.control.progress(job_id, 20)

    workers = (await http.get(f"{runpod_server.url}/health")).json()["workers"]

    assert (workers["running"], workers["idle"], workers["ready"]) == (1, 1, 1)
    assert runpod_server.control.workers() is None


# --- execution policy ---


async def test_a_job_running_past_its_execution_timeout_times_out_and_frees_its_worker(
    http: httpx.AsyncClient, start_runpod_server: StartRunPodServer
) -> None:
    server = start_runpod_server(workers=1)
    control = server.control
    control.set_behaviour(step=LONG, queue_delay=0)
    body = {"input": {}, "webhook": "http://127.0.0.1:9/hook", "policy": {"executionTimeout": 300}}
    timed = (await http.post(f"{server.url}/run", json=body)).json()["id"]
    queued = await submit(http, server)

    await wait_until(lambda: control.job(timed).status == "TIMED_OUT")
    await wait_until(lambda: len(control.webhook_deliveries()) == 1)

    view = control.job(timed)
    assert view.status_json["executionTime"] >= 290
    assert view.output is None
    assert control.job(queued).status == "IN_PROGRESS"
    [delivery] = control.webhook_deliveries()
    assert (delivery.job_id, delivery.body["status"]) == (timed, "TIMED_OUT")
    assert control.runs()[0].policy == {"executionTimeout": 300}


@pytest.mark.parametrize("behaviour", ["manual", "auto"])
async def test_a_job_still_queued_past_its_ttl_times_out_without_running(
    http: httpx.AsyncClient, start_runpod_server: StartRunPodServer, behaviour: str
) -> None:
    server = start_runpod_server(workers=0)  # nothing scripted ever leaves the queue
    server.control.set_behaviour("auto" if behaviour == "auto" else "manual", queue_delay=0)
    body = {"input": {}, "webhook": "http://127.0.0.1:9/hook", "policy": {"ttl": 300}}
    job_id = (await http.post(f"{server.url}/run", json=body)).json()["id"]

    await wait_until(lambda: server.control.job(job_id).status == "TIMED_OUT")
    await wait_until(lambda: len(server.control.webhook_deliveries()) == 1)

    view = server.control.job(job_id)
    assert "executionTime" not in view.status_json
    assert view.status_json["delayTime"] >= 290
    assert (view.started_at, view.finished_at is not None) == (None, True)
    assert server.control.webhook_deliveries()[0].body["status"] == "TIMED_OUT"


# --- run lengths ---


async def test_a_longer_input_finishes_after_a_shorter_one_started_with_it(
    http: httpx.AsyncClient, start_runpod_server: StartRunPodServer
) -> None:
    server = start_runpod_server(workers=0)
    control = server.control
    control.set_behaviour(queue_delay=0, seconds_per_input_second=0.02, steps=2)
    long_job = await submit(http, server, {"input_seconds": 100})
    short_job = await submit(http, server, {"input_seconds": 1})
    plain_job = await submit(http, server, {"input_seconds": "?"})
    await asyncio.sleep(0.3)

    control.set_workers(3)  # all three start in the same instant
    await wait_until(lambda: control.job(short_job).status == "COMPLETED")
    long_when_short_ended = control.job(long_job).status
    await wait_until(lambda: statuses(control, [long_job, plain_job]) == ["COMPLETED"] * 2)

    assert long_when_short_ended == "IN_PROGRESS"
    assert all(control.job(j).status_json["delayTime"] >= 300 for j in (long_job, short_job))
    assert _finished(control.job(long_job)) > _finished(control.job(short_job))
    assert [control.job(j).run_seconds for j in (long_job, short_job, plain_job)] == [
        pytest.approx(2.0),
        pytest.approx(0.02),
        pytest.approx(0.2),  # no numeric input_seconds: `step` (0.1) per progress step
    ]


async def test_noise_varies_run_lengths_reproducibly_from_its_seed(
    http: httpx.AsyncClient, runpod_server: RunningRunPodServer
) -> None:
    control = runpod_server.control

    async def run_lengths(seed: int) -> list[float | None]:
        control.reset()
        control.set_behaviour(step=LONG, seconds_per_input_second=1.0, noise=0.5, seed=seed)
        ids = [await submit(http, runpod_server, {"input_seconds": 10}) for _ in range(3)]
        return [control.job(job_id).run_seconds for job_id in ids]

    first, again, other = await run_lengths(7), await run_lengths(7), await run_lengths(8)

    assert first == again
    assert first != other
    assert len(set(first)) == 3
    assert all(length is not None and length > 0 for length in first)


def _started(view: JobView) -> float:
    assert view.started_at is not None
    return view.started_at


def _finished(view: JobView) -> float:
    assert view.finished_at is not None
    return view.finished_at
