"""Subscriptions over HTTP with the real JavaScript clients, run under Node:
Apollo Client (HttpLink, multipart), urql (fetchSubscriptions, SSE) and graphql-sse."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.servers.runpod_fake import RunningRunPodServer
from tests.support.app_server import StartApi, sqlite_url
from tests.support.assets import seed_assets
from tests.support.exports import runpod_id_of, start_overlay, wait_for_status
from tests.support.graphql import GraphQLHTTP
from tests.support.node import WEB_DIR, require_node_modules
from tests.support.sharing import sharing
from tests.support.tokens import JWT_SECRET, token_for
from tests.support.waiting import eventually


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The clients never reach the database: SQLite is enough."""
    return sqlite_url(tmp_path)


SCRIPT = WEB_DIR / "test" / "subscribe.mjs"
LINE_TIMEOUT_S = 20.0


class NodeSubscriber:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def next(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), LINE_TIMEOUT_S)
        assert line, f"the client exited: {await self.stderr()}"
        return dict(json.loads(line))

    async def job(self) -> dict[str, Any]:
        message = await self.next()
        assert "data" in message, message
        return dict(message["data"]["exportJob"])

    async def stderr(self) -> str:
        assert self.process.stderr is not None
        return (await self.process.stderr.read()).decode()


@pytest.mark.parametrize("client_name", ["apollo", "urql", "graphql-sse"])
async def test_the_client_follows_a_job_to_completion(
    start_api: StartApi, runpod: RunningRunPodServer, client_name: str
) -> None:
    require_node_modules()
    api = start_api(auth_jwt_secret=JWT_SECRET)
    assets = await seed_assets(api.settings, "alice")
    http = GraphQLHTTP(api.graphql_url, token_for("alice"))
    job_id = await start_overlay(http, assets.project_id)
    runpod_id = await runpod_id_of(runpod, job_id)
    await wait_for_status(http, job_id, "QUEUED")
    await http.aclose()
    process = await asyncio.create_subprocess_exec(
        "node",
        str(SCRIPT),
        client_name,
        api.graphql_url,
        job_id,
        token_for("alice"),
        cwd=WEB_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    client = NodeSubscriber(process)
    try:
        assert (await client.job())["status"] == "QUEUED"
        await eventually(lambda: sharing(api, groups=1, subscribers=1))
        runpod.control.progress(runpod_id, 40, "encoding")
        job = await client.job()
        assert (job["status"], job["progress"], job["message"]) == ("PROCESSING", 40, "encoding")
        runpod.control.complete(runpod_id)
        assert (await client.job())["status"] == "COMPLETE"
        # urql repeats the last result when the stream ends.
        while (message := await client.next()) != {"complete": True}:
            assert message["data"]["exportJob"]["status"] == "COMPLETE", message
        assert await asyncio.wait_for(process.wait(), LINE_TIMEOUT_S) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
