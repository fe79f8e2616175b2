"""A thousand attempts by one user at another user's jobs: not one succeeds."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.api.queries import CANCEL, GET_JOB, LIST_JOBS, RETRY, WATCH_JOB, WATCH_JOBS
from tests.api.test_tracking import start_overlay
from tests.faults.conftest import StartServer
from tests.servers.runpod_control import RunPodControl
from tests.support.assets import seed_assets
from tests.support.graphql import PROTOCOLS, GraphQLHTTP, GraphQLWebSocket, SubscriptionError
from tests.support.tokens import JWT_SECRET, token_for
from tests.support.waiting import eventually

pytestmark = pytest.mark.faults

ATTEMPTS = 1000
VICTIM_JOBS = 5


async def test_another_users_jobs_stay_out_of_reach(
    start_server: StartServer, control: RunPodControl
) -> None:
    server = start_server(ENVIRONMENT="production", AUTH_JWT_SECRET=JWT_SECRET)
    alice = GraphQLHTTP(server.graphql_url, token_for("alice"))
    mallory = GraphQLHTTP(server.graphql_url, token_for("mallory"))
    assets = await seed_assets(server.settings, "alice")
    job_ids = [await start_overlay(alice, assets.project_id) for _ in range(VICTIM_JOBS)]
    await eventually(lambda: len(control.runs()) == VICTIM_JOBS)
    # One of them failed, so that retrying it would be allowed for its owner.
    control.fail(control.runs()[0].id, "boom")
    mallory_sockets = [
        await GraphQLWebSocket.connect(server.ws_url, protocol, {"token": token_for("mallory")})
        for protocol in PROTOCOLS
    ]
    watch_all = [asyncio.create_task(_first(s.subscribe(WATCH_JOBS))) for s in mallory_sockets]
    successes: list[str] = []

    async def attempt(number: int, job_id: str) -> None:
        kind = number % 5
        if kind == 0:
            if (await mallory.execute(GET_JOB, {"id": job_id}))["exportJob"] is not None:
                successes.append(f"read {job_id}")
        elif kind == 1:
            if (await mallory.execute(LIST_JOBS, {"first": 100}))["exportJobs"]["edges"]:
                successes.append("list")
        elif kind in (2, 3):
            mutation, field = (CANCEL, "cancelExport") if kind == 2 else (RETRY, "retryExport")
            payload = (await mallory.execute(mutation, {"id": job_id}))[field]
            codes = [error["code"] for error in payload["userErrors"]]
            if payload["job"] is not None or codes != ["JOB_NOT_FOUND"]:
                successes.append(f"{field} {job_id}")
        else:
            socket = mallory_sockets[number % len(mallory_sockets)]
            try:
                await anext(socket.subscribe(WATCH_JOB, {"id": job_id}))
                successes.append(f"subscribe {job_id}")
            except SubscriptionError:
                pass

    numbered = list(zip(range(ATTEMPTS), itertools.cycle(job_ids), strict=False))
    for start in range(0, ATTEMPTS, 50):
        batch = numbered[start : start + 50]
        await asyncio.gather(*(attempt(number, job_id) for number, job_id in batch))
    # Alice's jobs changed meanwhile (one failed): none of it reached mallory's watchers.
    await asyncio.sleep(0.5)

    assert successes == []
    assert not any(task.done() for task in watch_all)
    assert [run.input["job_id"] for run in control.runs()] == job_ids  # nothing retried
    assert all(control.job(run.id).status != "CANCELLED" for run in control.runs())
    for task in watch_all:
        task.cancel()
    for socket in mallory_sockets:
        await socket.close()
    await alice.aclose()
    await mallory.aclose()


async def _first(stream: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    return await anext(stream)
