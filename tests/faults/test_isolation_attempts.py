"""A thousand attempts by one user at another user's jobs: not one succeeds.

Each attempt is checked for the exact answer a stranger gets: the job is not
found, the list is empty, the mutation answers JOB_NOT_FOUND, the subscription
ends in a JOB_NOT_FOUND error; and nothing about the victim's jobs changes.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.servers.runpod_control import RunPodControl
from tests.support.api_process import StartServer
from tests.support.assets import seed_assets
from tests.support.exports import start_overlay, wait_for_status
from tests.support.graphql import PROTOCOLS, GraphQLHTTP, GraphQLWebSocket, SubscriptionError
from tests.support.queries import CANCEL, GET_JOB, LIST_JOBS, RETRY, WATCH_JOB, WATCH_JOBS
from tests.support.tokens import JWT_SECRET, token_for
from tests.support.waiting import eventually

pytestmark = pytest.mark.faults

ATTEMPTS = 1000
VICTIM_JOBS = 5
BATCH = 50
NOT_FOUND = {"field": ["id"], "message": "No such export job.", "code": "JOB_NOT_FOUND"}
EMPTY_PAGE = {
    "edges": [],
    "pageInfo": {
        "hasNextPage": False,
        "hasPreviousPage": False,
        "startCursor": None,
        "endCursor": None,
    },
}


async def test_another_users_jobs_stay_out_of_reach(
    start_server: StartServer, control: RunPodControl
) -> None:
    server = start_server(ENVIRONMENT="production", AUTH_JWT_SECRET=JWT_SECRET)
    alice = GraphQLHTTP(server.graphql_url, token_for("alice"))
    mallory = GraphQLHTTP(server.graphql_url, token_for("mallory"))
    assets = await seed_assets(server.settings, "alice")
    job_ids = [await start_overlay(alice, assets.project_id) for _ in range(VICTIM_JOBS)]
    await eventually(lambda: len(control.runs()) == VICTIM_JOBS)
    runpod_ids = {str(run.input["job_id"]): run.id for run in control.runs()}
    # The failed one is retryable and the others cancellable, by their owner.
    control.fail(runpod_ids[job_ids[0]], "boom")
    await wait_for_status(alice, job_ids[0], "ERROR")
    for job_id in job_ids[1:]:
        await wait_for_status(alice, job_id, "QUEUED")
    sockets = [
        await GraphQLWebSocket.connect(server.ws_url, protocol, {"token": token_for("mallory")})
        for protocol in PROTOCOLS
    ]
    watch_all = [asyncio.create_task(_first(s.subscribe(WATCH_JOBS))) for s in sockets]

    async def attempt(number: int, job_id: str) -> Any:
        kind = number % 6
        if kind == 0:
            return (await mallory.execute(GET_JOB, {"id": job_id}))["exportJob"]
        if kind == 1:
            return (await mallory.execute(LIST_JOBS, {"first": 100}))["exportJobs"]
        if kind == 2:
            project = {"filter": {"projectId": assets.project_id}, "first": 100}
            return (await mallory.execute(LIST_JOBS, project))["exportJobs"]
        if kind == 3:
            return (await mallory.execute(CANCEL, {"id": job_id}))["cancelExport"]
        if kind == 4:
            return (await mallory.execute(RETRY, {"id": job_id}))["retryExport"]
        socket = sockets[number % len(sockets)]
        try:
            return await anext(socket.subscribe(WATCH_JOB, {"id": job_id}))
        except SubscriptionError as error:
            return [(item["message"], item["extensions"]["code"]) for item in error.payload]

    expected = {
        0: None,
        1: EMPTY_PAGE,
        2: EMPTY_PAGE,
        3: {"job": None, "userErrors": [NOT_FOUND]},
        4: {"job": None, "userErrors": [NOT_FOUND]},
        5: [("No such export job.", "JOB_NOT_FOUND")],
    }
    numbered = list(zip(range(ATTEMPTS), itertools.cycle(job_ids), strict=False))
    answers: list[Any] = []
    for start in range(0, ATTEMPTS, BATCH):
        batch = numbered[start : start + BATCH]
        answers += await asyncio.gather(*(attempt(number, job_id) for number, job_id in batch))
    # One of alice's jobs changes meanwhile: none of it reaches mallory's watchers.
    control.progress(runpod_ids[job_ids[1]], 50, "encoding")
    await wait_for_status(alice, job_ids[1], "PROCESSING")
    await asyncio.sleep(0.3)

    wrong = [(n, answer) for n, answer in enumerate(answers) if answer != expected[n % 6]]
    assert wrong == []
    assert len(answers) == ATTEMPTS
    assert [task.done() for task in watch_all] == [False, False]
    assert sorted(str(run.input["job_id"]) for run in control.runs()) == sorted(job_ids)
    assert {job.status for job in control.jobs()} == {"FAILED", "IN_QUEUE", "IN_PROGRESS"}
    assert sum(control.counts().job(run_id, "cancel") for run_id in runpod_ids.values()) == 0
    mine = (await alice.execute(LIST_JOBS, {"first": 100}))["exportJobs"]["edges"]
    assert sorted(edge["node"]["id"] for edge in mine) == sorted(job_ids)
    for task in watch_all:
        task.cancel()
    for socket in sockets:
        await socket.close()
    await alice.aclose()
    await mallory.aclose()


async def _first(stream: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    return await anext(stream)
