"""The embedded SQLite default under a burst of concurrent start mutations."""

from __future__ import annotations

import asyncio

import pytest

from tests.servers.runpod_control import RunPodControl
from tests.support.api_process import StartServer, read_only
from tests.support.assets import seed_assets
from tests.support.graphql import GraphQLHTTP
from tests.support.queries import START_OVERLAY, overlay_input
from tests.support.waiting import eventually

pytestmark = pytest.mark.faults

CONCURRENT_STARTS = 200
CLIENTS = 4


async def test_concurrent_starts_all_land_without_lock_errors(
    start_server: StartServer, control: RunPodControl
) -> None:
    server = start_server()
    assert server.settings.database_url.startswith("sqlite:///")
    assets = await seed_assets(server.settings, "local")
    clients = [GraphQLHTTP(server.graphql_url) for _ in range(CLIENTS)]

    async def start(number: int) -> tuple[int, dict[str, object]]:
        client = clients[number % len(clients)]
        response = await client.post(START_OVERLAY, {"input": overlay_input(assets.project_id)})
        return response.status_code, dict(response.json())

    answers = await asyncio.gather(*(start(n) for n in range(CONCURRENT_STARTS)))
    for client in clients:
        await client.aclose()

    assert {code for code, _ in answers} == {200}
    assert [body.get("errors") for _, body in answers] == [None] * CONCURRENT_STARTS
    payloads = [body["data"]["startOverlayExport"] for _, body in answers]  # type: ignore[index]
    assert [payload["userErrors"] for payload in payloads] == [[]] * CONCURRENT_STARTS
    job_ids = {payload["job"]["id"] for payload in payloads}
    assert len(job_ids) == CONCURRENT_STARTS
    rows = read_only(server)
    stored = {job_id for (job_id,) in rows.execute("SELECT id FROM export_jobs")}
    rows.close()
    assert stored == job_ids
    await eventually(lambda: len(control.runs()) == CONCURRENT_STARTS, timeout=60)
    assert sorted(str(run.input["job_id"]) for run in control.runs()) == sorted(job_ids)
    log = server.log()
    assert "database is locked" not in log
    assert "Traceback" not in log
