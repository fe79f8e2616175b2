"""Subscriptions over HTTP: SSE (GET and POST) and multipart, multiplexed with websockets."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.servers.runpod_fake import RunningRunPodServer
from tests.support.app_server import RunningApp, StartApi, sqlite_url
from tests.support.assets import SeededAssets, seed_assets
from tests.support.exports import runpod_id_of, start_overlay, wait_for_status
from tests.support.graphql import GraphQLHTTP, GraphQLWebSocket
from tests.support.http_streams import TRANSPORTS, HTTPSubscription, Transport
from tests.support.queries import WATCH_JOB
from tests.support.sharing import sharing
from tests.support.tokens import JWT_SECRET, token_for
from tests.support.waiting import eventually


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The transports behave alike on either database (the websocket tests run on both)."""
    return sqlite_url(tmp_path)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.mark.parametrize(
    ("transport", "method"), [("sse", "POST"), ("sse", "GET"), ("multipart", "POST")]
)
async def test_current_state_first_then_each_change_then_complete(
    api: RunningApp,
    client: GraphQLHTTP,
    http: httpx.AsyncClient,
    assets: SeededAssets,
    runpod: RunningRunPodServer,
    transport: Transport,
    method: str,
) -> None:
    job_id = await start_overlay(client, assets.project_id)
    runpod_id = await runpod_id_of(runpod, job_id)
    await wait_for_status(client, job_id, "QUEUED")
    subscription = HTTPSubscription(
        http,
        api.graphql_url,
        transport,
        WATCH_JOB,
        {"id": job_id},
        method=method,  # type: ignore[arg-type]
    )
    results = subscription.results()

    first = (await anext(results))["data"]["exportJob"]
    assert (first["id"], first["status"]) == (job_id, "QUEUED")
    runpod.control.progress(runpod_id, 40, "encoding")
    job = (await anext(results))["data"]["exportJob"]
    assert (job["status"], job["progress"], job["message"]) == ("PROCESSING", 40, "encoding")
    runpod.control.complete(runpod_id)
    final = (await anext(results))["data"]["exportJob"]

    assert final["status"] == "COMPLETE"
    assert [result async for result in results] == []  # `complete` ends the stream
    await eventually(lambda: sharing(api, groups=0, subscribers=0))


async def test_http_and_websocket_subscribers_of_a_job_share_one_execution(
    api: RunningApp,
    client: GraphQLHTTP,
    http: httpx.AsyncClient,
    assets: SeededAssets,
    runpod: RunningRunPodServer,
) -> None:
    job_id = await start_overlay(client, assets.project_id)
    runpod_id = await runpod_id_of(runpod, job_id)
    socket = await GraphQLWebSocket.connect(api.ws_url)
    over_ws = socket.subscribe(WATCH_JOB, {"id": job_id})
    over_http = [
        HTTPSubscription(http, api.graphql_url, transport, WATCH_JOB, {"id": job_id})
        for transport in TRANSPORTS
    ]
    streams = [subscription.results() for subscription in over_http]
    await anext(over_ws)
    for stream in streams:
        await anext(stream)
    await eventually(lambda: sharing(api, groups=1, subscribers=3))

    await over_http[0].close()
    await eventually(lambda: sharing(api, groups=1, subscribers=2))
    runpod.control.progress(runpod_id, 70, "muxing")

    assert (await anext(streams[1]))["data"]["exportJob"]["progress"] == 70
    assert (await anext(over_ws))["exportJob"]["progress"] == 70
    await over_http[1].close()
    await socket.close()
    await eventually(lambda: sharing(api, groups=0, subscribers=0))


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_an_idle_stream_carries_heartbeats(
    start_api: StartApi, http: httpx.AsyncClient, transport: Transport
) -> None:
    api = start_api(http_stream_heartbeat_s=0.05)
    assets = await seed_assets(api.settings, "local")
    client = GraphQLHTTP(api.graphql_url)
    job_id = await start_overlay(client, assets.project_id)
    await wait_for_status(client, job_id, "QUEUED")  # then nothing changes
    await client.aclose()
    subscription = HTTPSubscription(http, api.graphql_url, transport, WATCH_JOB, {"id": job_id})

    kinds = []
    async for frame in subscription.frames():
        kinds.append(frame.kind)
        if kinds.count("heartbeat") == 2 and "next" in kinds:
            break

    assert kinds.count("next") == 1  # only the current state: the job has not changed
    await subscription.close()


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_subscription_over_plain_http_is_told_how_to_subscribe(
    api: RunningApp, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, method: str
) -> None:
    caplog.set_level(logging.INFO)
    document = 'subscription { exportJob(id: "1") { status } }'

    if method == "GET":
        response = await http.get(api.graphql_url, params={"query": document})
    else:
        response = await http.post(api.graphql_url, json={"query": document})

    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "STREAMING_REQUIRED"
    assert "Accept: text/event-stream" in error["message"]
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_an_invalid_subscription_gets_its_errors_then_complete(
    api: RunningApp, http: httpx.AsyncClient, transport: Transport
) -> None:
    document = 'subscription { exportJob(id: "1") { status noSuchField } }'
    subscription = HTTPSubscription(http, api.graphql_url, transport, document)

    (result,) = [result async for result in subscription.results()]

    assert "noSuchField" in result["errors"][0]["message"]
    await eventually(lambda: sharing(api, groups=0, subscribers=0))


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_streams_authenticate_and_never_show_another_users_job(
    start_api: StartApi, http: httpx.AsyncClient, transport: Transport
) -> None:
    api = start_api(auth_jwt_secret=JWT_SECRET)
    assets = await seed_assets(api.settings, "alice")
    alice = GraphQLHTTP(api.graphql_url, token_for("alice"))
    job_id = await start_overlay(alice, assets.project_id)
    await alice.aclose()

    def subscribe(token: str | None) -> HTTPSubscription:
        return HTTPSubscription(
            http, api.graphql_url, transport, WATCH_JOB, {"id": job_id}, token=token
        )

    owner = subscribe(token_for("alice"))
    assert (await anext(owner.results()))["data"]["exportJob"]["id"] == job_id
    await owner.close()
    (other,) = [result async for result in subscribe(token_for("mallory")).results()]
    assert other["errors"][0]["extensions"]["code"] == "JOB_NOT_FOUND"
    (anonymous,) = [result async for result in subscribe(None).results()]
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    forged = await subscribe("not-a-token").open()
    assert forged.status_code == 401


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        # urql's Accept for queries and mutations: it ranks the newer JSON type first
        (
            "application/graphql-response+json, application/graphql+json, application/json, "
            "text/event-stream, multipart/mixed",
            "application/graphql-response+json",
        ),
        ("text/event-stream", "text/event-stream"),  # graphql-sse's distinct connections
    ],
)
async def test_queries_are_answered_in_json_unless_only_a_stream_is_accepted(
    api: RunningApp, http: httpx.AsyncClient, accept: str, content_type: str
) -> None:
    response = await http.post(
        api.graphql_url, json={"query": "{ projects { id } }"}, headers={"Accept": accept}
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith(content_type)
    assert '"projects":[]' in response.text


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_streams_past_the_per_user_cap_are_refused_429(
    start_api: StartApi,
    http: httpx.AsyncClient,
    runpod: RunningRunPodServer,
    transport: Transport,
) -> None:
    api = start_api(max_connections_per_user=2)
    assets = await seed_assets(api.settings, "local")
    client = GraphQLHTTP(api.graphql_url)
    job_id = await start_overlay(client, assets.project_id)
    await client.aclose()

    def subscription() -> HTTPSubscription:
        return HTTPSubscription(http, api.graphql_url, transport, WATCH_JOB, {"id": job_id})

    held = [subscription(), subscription()]
    # Kept referenced: a dropped reader closes its stream.
    readers = [stream.results() for stream in held]
    for reader in readers:
        await anext(reader)
    refused = await subscription().open()
    body = json.loads(await refused.aread())
    await held.pop().close()

    async def admitted() -> HTTPSubscription | None:
        """A new stream, once the server has seen the closed one go and freed its slot."""
        candidate = subscription()
        if (await candidate.open()).status_code == 429:
            await candidate.close()
            return None
        return candidate

    let_in = await eventually(admitted)
    readers.append(let_in.results())
    await anext(readers[-1])

    assert refused.status_code == 429
    assert body["errors"][0]["extensions"]["code"] == "TOO_MANY_CONNECTIONS"
    for stream in [*held, let_in]:
        await stream.close()
