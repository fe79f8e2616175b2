"""Authentication, and one user never seeing or touching another user's jobs."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import websockets

from tests.servers.runpod_fake import RunningRunPodServer
from tests.support.app_server import RunningApp, StartApi
from tests.support.assets import seed_assets
from tests.support.exports import runpod_id_of, start_overlay
from tests.support.graphql import (
    PROTOCOLS,
    GraphQLHTTP,
    GraphQLWebSocket,
    Protocol,
    SubscriptionError,
)
from tests.support.queries import CANCEL, GET_JOB, LIST_JOBS, RETRY, WATCH_JOB, WATCH_JOBS
from tests.support.tokens import JWT_SECRET, token_for


@pytest.fixture
def secured_api(start_api: StartApi) -> RunningApp:
    return start_api(auth_jwt_secret=JWT_SECRET)


async def test_another_users_job_is_not_found_over_http(
    secured_api: RunningApp, runpod: RunningRunPodServer
) -> None:
    alice = GraphQLHTTP(secured_api.graphql_url, token_for("alice"))
    mallory = GraphQLHTTP(secured_api.graphql_url, token_for("mallory"))
    assets = await seed_assets(secured_api.settings, "alice")
    job_id = await start_overlay(alice, assets.project_id)
    runpod_id = await runpod_id_of(runpod, job_id)
    runpod.control.fail(runpod_id, "boom")

    assert (await mallory.execute(GET_JOB, {"id": job_id}))["exportJob"] is None
    assert (await mallory.execute(LIST_JOBS))["exportJobs"]["edges"] == []
    for mutation, field in ((CANCEL, "cancelExport"), (RETRY, "retryExport")):
        payload = (await mallory.execute(mutation, {"id": job_id}))[field]
        assert payload["job"] is None
        assert [error["code"] for error in payload["userErrors"]] == ["JOB_NOT_FOUND"]
    assert (await alice.execute(GET_JOB, {"id": job_id}))["exportJob"]["id"] == job_id
    assert len(runpod.control.runs()) == 1
    await alice.aclose()
    await mallory.aclose()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_another_users_job_cannot_be_subscribed_to(
    secured_api: RunningApp, runpod: RunningRunPodServer, protocol: Protocol
) -> None:
    alice = GraphQLHTTP(secured_api.graphql_url, token_for("alice"))
    assets = await seed_assets(secured_api.settings, "alice")
    job_id = await start_overlay(alice, assets.project_id)
    runpod_id = await runpod_id_of(runpod, job_id)

    mallory = await GraphQLWebSocket.connect(
        secured_api.ws_url, protocol, {"authorization": f"Bearer {token_for('mallory')}"}
    )
    with pytest.raises(SubscriptionError, match="No such export job"):
        async for _ in mallory.subscribe(WATCH_JOB, {"id": job_id}):
            pass
    everything = mallory.subscribe(WATCH_JOBS)
    pending = asyncio.ensure_future(anext(everything))
    runpod.control.progress(runpod_id, 50, "secret progress")
    await asyncio.sleep(0.5)
    assert not pending.done()
    pending.cancel()
    await mallory.close()
    await alice.aclose()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_users_own_job_subscription_works_with_each_connection_param_style(
    secured_api: RunningApp, runpod: RunningRunPodServer, protocol: Protocol
) -> None:
    token = token_for("alice")
    alice = GraphQLHTTP(secured_api.graphql_url, token)
    assets = await seed_assets(secured_api.settings, "alice")
    job_id = await start_overlay(alice, assets.project_id)
    for params in (
        {"authorization": f"Bearer {token}"},
        {"Authorization": f"Bearer {token}"},
        {"token": token},
        {"headers": {"Authorization": f"Bearer {token}"}},
    ):
        socket = await GraphQLWebSocket.connect(secured_api.ws_url, protocol, params)
        first = await anext(socket.subscribe(WATCH_JOB, {"id": job_id}))
        assert first["exportJob"]["id"] == job_id
        await socket.close()
    await alice.aclose()


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    "params",
    [{}, {"authorization": "Bearer not-a-jwt"}, {"token": 12}],
    ids=["missing", "forged", "wrong-type"],
)
async def test_websocket_without_a_valid_token_is_refused(
    secured_api: RunningApp, protocol: Protocol, params: dict[str, object]
) -> None:
    with pytest.raises((SubscriptionError, websockets.ConnectionClosed)):
        socket = await GraphQLWebSocket.connect(secured_api.ws_url, protocol, params)
        await anext(socket.subscribe(WATCH_JOBS))


async def test_graphql_transport_ws_refusal_closes_with_4403(secured_api: RunningApp) -> None:
    async with websockets.connect(
        secured_api.ws_url,
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
    ) as connection:
        await connection.send('{"type": "connection_init", "payload": {"token": "forged"}}')
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await connection.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403


async def test_http_with_a_bad_token_gets_401_and_without_one_an_auth_error(
    secured_api: RunningApp,
) -> None:
    async with httpx.AsyncClient() as http:
        forged = await http.post(
            secured_api.graphql_url,
            json={"query": "{ exportJobs { edges { cursor } } }"},
            headers={"Authorization": "Bearer forged"},
        )
        assert forged.status_code == 401
        anonymous = await http.post(
            secured_api.graphql_url, json={"query": "{ exportJobs { edges { cursor } } }"}
        )
    body = anonymous.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
