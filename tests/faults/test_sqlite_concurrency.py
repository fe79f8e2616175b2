"""The embedded SQLite default under a burst of concurrent start mutations."""

from __future__ import annotations

import asyncio

import pytest

from tests.api.queries import START_OVERLAY, overlay_input
from tests.faults.conftest import StartServer
from tests.servers.runpod_control import RunPodControl
from tests.support.assets import seed_assets
from tests.support.graphql import GraphQLHTTP
from tests.support.waiting import eventually

pytestmark = pytest.mark.faults

CONCURRENT_STARTS = 200


async def test_concurrent_starts_all_land_without_lock_errors(
    start_server: StartServer, control: RunPodControl
) -> None:
    server = start_server()
    assets = await seed_assets(server.settings, "local")
    clients = [GraphQLHTTP(server.graphql_url) for _ in range(4)]

    async def start(number: int) -> dict[str, object]:
        client = clients[number % len(clients)]
        response = await client.post(START_OVERLAY, {"input": overlay_input(assets.project_id)})
        assert response.status_code == 200, response.text
        return dict(response.json())

    answers = await asyncio.gather(*(start(n) for n in range(CONCURRENT_STARTS)))
    for client in clients:
        await client.aclose()

    assert [answer.get("errors") for answer in answers] == [None] * CONCURRENT_STARTS
    job_ids = {answer["data"]["startOverlayExport"]["job"]["id"] for answer in answers}  # type: ignore[index]
    assert len(job_ids) == CONCURRENT_STARTS
    await eventually(lambda: len(control.runs()) == CONCURRENT_STARTS, timeout=60)
    assert {run.input["job_id"] for run in control.runs()} == job_ids
    assert "database is locked" not in server.log()
