"""Several `export-gql serve` processes on one PostgreSQL database act as one service.

Real processes, the real database and the RunPod-compatible test server: a job
started on one process is followed live on the others, a cancel or a webhook
works wherever it lands, a killed follower's jobs are taken over, leases spread
out, and a dropped feed connection leaves nobody stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from gql.clock import format_time, utcnow
from tests.servers.runpod_control import RunPodControl
from tests.servers.runpod_fake import RunPodServerProcess
from tests.servers.runpod_models import RouteLimit
from tests.support.api_process import PROJECT_ROOT, ApiProcess, StartServer
from tests.support.app_server import free_port
from tests.support.assets import SeededAssets, seed_assets
from tests.support.exports import runs_for, start_overlay, wait_for_status
from tests.support.graphql import GraphQLHTTP, GraphQLWebSocket, collect
from tests.support.queries import CANCEL, START_OVERLAY, WATCH_JOB, WATCH_JOBS, overlay_input
from tests.support.waiting import eventually

pytestmark = [pytest.mark.faults, pytest.mark.postgres]

POLL_INTERVAL_S = 0.2
Stream = AsyncIterator[dict[str, Any]]
StartCluster = Callable[..., list[ApiProcess]]


@pytest.fixture
def start_cluster(start_server: StartServer, postgres_url: str) -> StartCluster:
    """`count` API processes on the test PostgreSQL database and one RunPod endpoint."""

    def start(count: int, **env: Any) -> list[ApiProcess]:
        env = {"DATABASE_URL": postgres_url, "POLL_INTERVAL_S": str(POLL_INTERVAL_S), **env}
        return [start_server(**env) for _ in range(count)]

    return start


async def until(stream: Stream, done: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """The job states a subscription delivers, up to the first for which `done` holds."""

    async def read() -> list[dict[str, Any]]:
        seen = []
        async for data in stream:
            job = data.get("exportJob") or data["exportJobs"]
            seen.append(job)
            if done(job):
                return seen
        raise AssertionError(f"the subscription ended first: {seen}")

    return await asyncio.wait_for(read(), 20)


async def process_id(server: ApiProcess) -> str:
    async with httpx.AsyncClient() as http:
        health = (await http.get(f"{server.url}/healthz")).json()
    return str(health["checks"]["leases"]["process"])


async def lease_owners(postgres_url: str) -> dict[str, str | None]:
    """Job id -> the process holding its lease, for every job that needs a follower."""
    connection = await asyncpg.connect(postgres_url)
    try:
        rows = await connection.fetch(
            "SELECT id, lease_owner FROM export_jobs "
            "WHERE status IN ('pending', 'queued', 'processing') OR cancel_pending = 1"
        )
    finally:
        await connection.close()
    return {row["id"]: row["lease_owner"] for row in rows}


async def lease_owner(postgres_url: str, job_id: str) -> str | None:
    """The process holding the job's lease; None while it is between processes."""
    return (await lease_owners(postgres_url)).get(job_id)


async def started_jobs(
    server: ApiProcess, control: RunPodControl, count: int
) -> tuple[SeededAssets, list[str], list[str]]:
    """`count` jobs started on `server` and accepted by RunPod: (assets, jobs, RunPod ids)."""
    assets = await seed_assets(server.settings, "local")
    client = GraphQLHTTP(server.graphql_url)
    job_ids = [await start_overlay(client, assets.project_id) for _ in range(count)]
    runpod_ids = [
        (await eventually(lambda j=job_id: runs_for(control, j)))[0] for job_id in job_ids
    ]
    for job_id in job_ids:
        await wait_for_status(client, job_id, "QUEUED")
    await client.aclose()
    return assets, job_ids, runpod_ids


async def test_a_job_started_on_one_process_is_followed_live_on_the_others(
    start_cluster: StartCluster, control: RunPodControl
) -> None:
    a, b, c = start_cluster(3)
    _, (job_id,), (runpod_id,) = await started_jobs(a, control, 1)
    on_b = await GraphQLWebSocket.connect(b.ws_url, "graphql-transport-ws")
    on_c = await GraphQLWebSocket.connect(c.ws_url, "graphql-ws")
    listing = on_c.subscribe(WATCH_JOBS, {})
    primed = await listening(listing, control, runpod_id)
    watchers = [
        on_b.subscribe(WATCH_JOB, {"id": job_id}),
        on_c.subscribe(WATCH_JOB, {"id": job_id}),
    ]
    for stream in watchers:
        assert (await anext(stream))["exportJob"]["progress"] == primed

    seen: list[list[tuple[str, int]]] = [[] for _ in (*watchers, listing)]
    for progress in (30, 60):
        control.progress(runpod_id, progress, "encoding")
        for index, stream in enumerate((*watchers, listing)):
            states = await until(stream, lambda job, p=progress: job["progress"] == p)
            seen[index] += [(job["status"], job["progress"]) for job in states]
    control.complete(runpod_id)
    for index, stream in enumerate(watchers):
        final = [u["exportJob"] for u in await collect(stream)]
        seen[index] += [(job["status"], job["progress"]) for job in final]
    seen[2] += [(job["status"], job["progress"]) for job in await until(listing, _complete)]

    expected = [("PROCESSING", 30), ("PROCESSING", 60), ("COMPLETE", 100)]
    assert seen == [expected, expected, expected]
    await on_b.close()
    await on_c.close()


async def listening(listing: Stream, control: RunPodControl, runpod_id: str) -> int:
    """Move the job on until an `exportJobs` subscription (which has no first state)
    shows it is live; returns the progress it was last moved to."""
    first = asyncio.ensure_future(anext(listing))
    progress = 1
    while True:
        control.progress(runpod_id, progress, "starting")
        await asyncio.wait([first], timeout=0.5)
        if first.done():
            break
        progress += 1
    if first.result()["exportJobs"]["progress"] != progress:
        await until(listing, lambda job: job["progress"] == progress)
    return progress


def _complete(job: dict[str, Any]) -> bool:
    return job["status"] == "COMPLETE"


async def test_a_cancel_sent_to_a_third_process_reaches_every_subscriber_and_runpod(
    start_cluster: StartCluster, control: RunPodControl
) -> None:
    a, b, c = start_cluster(3)
    _, (job_id,), (runpod_id,) = await started_jobs(a, control, 1)
    control.progress(runpod_id, 9, "encoding")
    sockets = [await GraphQLWebSocket.connect(server.ws_url) for server in (a, b)]
    streams = [socket.subscribe(WATCH_JOB, {"id": job_id}) for socket in sockets]
    for stream in streams:
        await until(stream, lambda job: job["progress"] == 9)

    client = GraphQLHTTP(c.graphql_url)
    payload = (await client.execute(CANCEL, {"id": job_id}))["cancelExport"]
    await client.aclose()

    assert payload["userErrors"] == []
    for stream in streams:
        assert [u["exportJob"]["status"] for u in await collect(stream)] == ["CANCELLED"]
    await eventually(lambda: control.job(runpod_id).status == "CANCELLED")
    for socket in sockets:
        await socket.close()


async def polls_per_job_per_interval(control: RunPodControl, runpod_ids: list[str]) -> float:
    """The most `/status` polls any of the jobs received per interval, over 2 s."""
    window = 2.0
    control.reset_counts()
    await asyncio.sleep(window)
    counts = control.counts()
    return max(counts.job(runpod_id) for runpod_id in runpod_ids) / (window / POLL_INTERVAL_S)


async def test_a_killed_followers_jobs_are_taken_over_and_finish_for_every_subscriber(
    start_cluster: StartCluster, control: RunPodControl, postgres_url: str
) -> None:
    servers = start_cluster(3)
    _, job_ids, runpod_ids = await started_jobs(servers[0], control, 6)
    for runpod_id in runpod_ids:
        control.progress(runpod_id, 10, "encoding")
    by_process = {await process_id(server): server for server in servers}
    owner = await eventually(lambda: lease_owner(postgres_url, job_ids[0]))
    assert owner is not None
    victim = by_process[owner]
    survivors = [server for server in servers if server is not victim]
    sockets = [await GraphQLWebSocket.connect(server.ws_url) for server in survivors]
    streams = [socket.subscribe(WATCH_JOB, {"id": j}) for socket in sockets for j in job_ids]
    for stream in streams:
        await until(stream, lambda job: job["progress"] == 10)
    assert await polls_per_job_per_interval(control, runpod_ids) <= 1.2

    victim.kill()

    survivor_ids = {await process_id(server) for server in survivors}

    async def taken_over() -> bool:
        return set((await lease_owners(postgres_url)).values()) <= survivor_ids

    await eventually(taken_over)
    assert await polls_per_job_per_interval(control, runpod_ids) <= 1.2
    for runpod_id in runpod_ids:
        control.complete(runpod_id)
    for stream in streams:
        assert (await until(stream, _complete))[-1]["status"] == "COMPLETE"
    assert await lease_owners(postgres_url) == {}  # no job left unfinished
    for socket in sockets:
        await socket.close()


async def test_leases_spread_over_the_processes(
    start_cluster: StartCluster, control: RunPodControl, postgres_url: str
) -> None:
    a, b = start_cluster(2)
    assets = await seed_assets(a.settings, "local")
    client = GraphQLHTTP(a.graphql_url)
    for _ in range(100):
        await start_overlay(client, assets.project_id)
    await client.aclose()

    async def shares() -> Counter[str | None] | None:
        owners = Counter((await lease_owners(postgres_url)).values())
        return owners if len(owners) == 2 and max(owners.values()) <= 60 else None

    owners = await eventually(shares)
    assert sum(owners.values()) == 100
    assert set(owners) == {await process_id(a), await process_id(b)}


async def test_two_processes_share_runpods_budget_rather_than_each_spending_it(
    start_cluster: StartCluster, control: RunPodControl
) -> None:
    # RunPod (the stand-in) allows 20 /status requests per 2 s; each process is told
    # the same, and 12 jobs polled every 0.1 s ask for six times that.
    control.set_limits({"status": RouteLimit(requests=20, window_s=2.0)})
    limit = {"RUNPOD_STATUS_RATE": "20", "RUNPOD_RATE_WINDOW_S": "2"}
    a, b = start_cluster(2, POLL_INTERVAL_S="0.1", POLL_INTERVAL_UNWATCHED_S="0.1", **limit)
    assets = await seed_assets(a.settings, "local")
    async with GraphQLHTTP(a.graphql_url) as client:
        for _ in range(12):
            await start_overlay(client, assets.project_id)

    async def both_following() -> bool:
        return all([(await leases_and_followers(server))[1] > 0 for server in (a, b)])

    await eventually(both_following)
    control.reset_counts()
    await asyncio.sleep(6.0)  # three windows of the limit
    counts = control.counts()
    assert counts.throttled_count("status") == 0
    assert 10 <= control.busiest_window("status", 2.0) <= 20  # the budget used, not more


QUEUE_POSITION = "query ($id: ID!) { exportJob(id: $id) { queuePosition } }"


async def test_every_process_tells_each_waiting_export_the_same_queue_position(
    start_cluster: StartCluster, control: RunPodControl
) -> None:
    a, b = start_cluster(2)
    assets = await seed_assets(a.settings, "local")
    async with GraphQLHTTP(a.graphql_url) as on_a, GraphQLHTTP(b.graphql_url) as on_b:
        # Started on either process, in this order; the stand-in keeps them queued.
        line = [await start_overlay(client, assets.project_id) for client in (on_a, on_b) * 2]
        for job_id in line:
            await wait_for_status(on_a, job_id, "QUEUED")

        async def positions(client: GraphQLHTTP) -> list[int | None]:
            answers = [await client.execute(QUEUE_POSITION, {"id": j}) for j in line]
            return [answer["exportJob"]["queuePosition"] for answer in answers]

        async def both_say(expected: list[int | None]) -> bool:
            return await positions(on_a) == expected and await positions(on_b) == expected

        await eventually(lambda: both_say([1, 2, 3, 4]))
        await on_b.execute(CANCEL, {"id": line[1]})  # one ahead leaves, on the other process
        await eventually(lambda: both_say([1, None, 2, 3]))


async def leases_and_followers(server: ApiProcess) -> tuple[int, int]:
    """(leases held, jobs followed) by one process, as its /healthz reports them."""
    async with httpx.AsyncClient() as http:
        leases = (await http.get(f"{server.url}/healthz")).json()["checks"]["leases"]
    return int(leases["leases_held"]), int(leases["following"])


async def test_webhooks_during_a_hand_over_leave_each_job_one_follower(
    start_cluster: StartCluster, control: RunPodControl, postgres_url: str
) -> None:
    (a,) = start_cluster(1, webhooks=True)
    _, job_ids, runpod_ids = await started_jobs(a, control, 10)
    webhooks = [control.job(runpod_id) for runpod_id in runpod_ids]
    # Each /status answer now takes a second, so a job the first process gives up
    # waits that long for its follower's request to end, while webhooks keep coming.
    control.inject("delay", route="status", delay=1.0, count=60)
    (b,) = start_cluster(1, webhooks=True)
    async with httpx.AsyncClient() as http:
        for _ in range(30):
            for job in webhooks:
                assert job.webhook is not None
                await http.post(job.webhook, json=job.webhook_json)
            await asyncio.sleep(0.1)

    async def settled() -> bool:
        owners = Counter((await lease_owners(postgres_url)).values())
        shares = [await leases_and_followers(server) for server in (a, b)]
        shared = all(held > 0 for held, _ in shares) and sum(owners.values()) == 10
        return shared and all(held == followed for held, followed in shares)

    # The jobs end up shared, each followed by the one process holding its lease.
    await eventually(settled, timeout=20)
    assert set(await lease_owners(postgres_url)) == set(job_ids)


async def test_a_webhook_reaching_a_process_that_does_not_follow_the_job_is_acted_on_at_once(
    start_cluster: StartCluster, control: RunPodControl
) -> None:
    # Polls 60 s apart: only the webhook can make the follower look within the test.
    a, b = start_cluster(2, webhooks=True, POLL_INTERVAL_S="60")
    _, (job_id,), (runpod_id,) = await started_jobs(a, control, 1)
    socket = await GraphQLWebSocket.connect(b.ws_url)
    stream = socket.subscribe(WATCH_JOB, {"id": job_id})
    assert (await anext(stream))["exportJob"]["status"] == "QUEUED"
    control.complete(runpod_id, webhook=False)

    job = control.job(runpod_id)
    assert job.webhook is not None and job.webhook.startswith(a.url)
    async with httpx.AsyncClient() as http:
        answer = await http.post(job.webhook.replace(a.url, b.url), json=job.webhook_json)

    assert answer.status_code == 200
    assert [u["exportJob"]["status"] for u in await collect(stream, timeout=10)] == ["COMPLETE"]
    await socket.close()


async def test_a_job_too_large_for_one_notification_still_reaches_the_other_processes(
    start_cluster: StartCluster, control: RunPodControl
) -> None:
    a, b = start_cluster(2)
    assets = await seed_assets(a.settings, "local")
    keyframes = [
        {"time": 0.5 + i / 1000, "x": 100, "y": 80, "radiusX": 40, "radiusY": 30}
        for i in range(1000)
    ]
    region = {"startTime": 0.5, "endTime": 1.5, "keyframes": keyframes}
    client = GraphQLHTTP(a.graphql_url)
    started = await client.execute(
        START_OVERLAY, {"input": overlay_input(assets.project_id, highlightRegions=[region])}
    )
    job_id = started["startOverlayExport"]["job"]["id"]
    await client.aclose()
    (runpod_id,) = await eventually(lambda: runs_for(control, job_id))
    socket = await GraphQLWebSocket.connect(b.ws_url)
    stream = socket.subscribe(WATCH_JOB, {"id": job_id})
    await anext(stream)

    control.progress(runpod_id, 50)

    assert (await until(stream, lambda job: job["progress"] == 50))[-1]["status"] == "PROCESSING"
    await socket.close()


async def test_after_the_feed_connection_is_killed_subscribers_catch_up_on_missed_changes(
    start_cluster: StartCluster, control: RunPodControl, postgres_url: str
) -> None:
    a, b = start_cluster(2)
    _, (job_id,), (runpod_id,) = await started_jobs(a, control, 1)
    socket = await GraphQLWebSocket.connect(b.ws_url)
    listing = socket.subscribe(WATCH_JOBS, {})
    primed = await listening(listing, control, runpod_id)
    watching = socket.subscribe(WATCH_JOB, {"id": job_id})
    assert (await anext(watching))["exportJob"]["progress"] == primed

    # A change whose notification is lost: written straight to the database, with
    # the next change number, as every job write takes one.
    connection = await asyncpg.connect(postgres_url)
    await connection.execute(
        "UPDATE export_jobs SET status = 'processing', progress = 77, version = version + 1, "
        "updated_at = $2, change_seq = (SELECT MAX(change_seq) + 1 FROM export_jobs) "
        "WHERE id = $1",
        job_id,
        format_time(utcnow()),
    )
    killed = await connection.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
        f"export-gql feed {await process_id(b)}"[:63],
    )
    await connection.close()

    assert killed == 1
    assert (await until(watching, lambda job: job["progress"] == 77))[-1]["status"] == "PROCESSING"
    assert (await until(listing, lambda job: job["progress"] == 77))[-1]["id"] == job_id
    async with httpx.AsyncClient() as http:
        feed = (await http.get(f"{b.url}/healthz")).json()["checks"]["feed"]
    assert (feed["connected"], feed["reconnects"]) == (True, 1)
    # And the feed carries changes again.
    control.progress(runpod_id, 90)
    assert (await until(watching, lambda job: job["progress"] == 90))[-1]["progress"] == 90
    await socket.close()


def serve_workers(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "RUNPOD_"))}
    return subprocess.Popen(
        [sys.executable, "-m", "gql.cli", "serve", "--workers", "2", *args],
        cwd=PROJECT_ROOT,
        env={**inherited, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_serve_workers_on_sqlite_stops_with_a_clear_error(tmp_path: Path) -> None:
    process = serve_workers(env={"DATA_DIR": str(tmp_path)})
    output, _ = process.communicate(timeout=60)

    assert process.returncode == 2
    assert output.strip().splitlines() == [
        "serve --workers needs PostgreSQL (DATABASE_URL=postgresql://...): "
        "SQLite allows one writer and has no change feed between processes"
    ]


async def answering_processes(port: int) -> dict[str, dict[str, Any]] | None:
    """The health reports of both workers behind the port, by process, once both answer."""
    seen = {}
    for _ in range(20):
        try:
            async with httpx.AsyncClient() as http:  # a new connection each time
                health = (await http.get(f"http://127.0.0.1:{port}/healthz")).json()
        except httpx.TransportError:
            return None
        seen[health["checks"]["leases"]["process"]] = health
    return seen if len(seen) == 2 else None


def children(pid: int) -> list[tuple[int, list[str]]]:
    """The child processes of `pid` and their command lines."""
    found = []
    for listing in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in listing.read_text().split():
            with contextlib.suppress(FileNotFoundError):
                argv = Path(f"/proc/{child}/cmdline").read_bytes().decode().split("\0")
                found.append((int(child), argv))
    return found


def running(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)
    assert process.returncode == 0


async def test_serve_workers_on_postgres_serves_from_every_worker(
    postgres_url: str, runpod_process: RunPodServerProcess, tmp_path: Path
) -> None:
    port = free_port()
    process = serve_workers(
        "--port",
        str(port),
        env={
            "DATA_DIR": str(tmp_path),
            "DATABASE_URL": postgres_url,
            "RUNPOD_ENDPOINT_URL": runpod_process.url,
        },
    )
    try:
        healths = await eventually(lambda: answering_processes(port), timeout=60)
        async with httpx.AsyncClient() as http:
            exposition = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    finally:
        stop(process)

    assert [health["status"] for health in healths.values()] == ["ok", "ok"]
    # Either worker reports both: each is connected to the feed.
    assert "export_gql_feed_connected 1.0" in exposition
    assert "export_gql_subscriptions 0.0" in exposition


async def test_serve_workers_without_an_endpoint_share_one_local_worker(
    postgres_url: str, tmp_path: Path
) -> None:
    port = free_port()
    process = serve_workers(
        "--port", str(port), env={"DATA_DIR": str(tmp_path), "DATABASE_URL": postgres_url}
    )
    try:
        healths = await eventually(lambda: answering_processes(port), timeout=60)
        local_workers = [
            pid for pid, argv in children(process.pid) if argv[1:4] == ["-m", "gql.cli", "worker"]
        ]
    finally:
        stop(process)

    assert len(local_workers) == 1
    for health in healths.values():
        assert health["checks"]["runpod"]["ok"] is True  # reached with the shared API key
    assert not running(local_workers[0])
