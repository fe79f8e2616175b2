"""Websocket clients that misbehave: the server closes them and keeps nothing of them."""

from __future__ import annotations

import asyncio
import json
import resource
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from gql.auth.tokens import Authenticator
from tests.servers.runpod_fake import RunPodServerProcess
from tests.support.api_process import ApiProcess
from tests.support.assets import seed_assets
from tests.support.exports import start_overlay
from tests.support.graphql import GraphQLHTTP, GraphQLWebSocket, SubscriptionError
from tests.support.queries import WATCH_JOB
from tests.support.tokens import JWT_SECRET, token_for
from tests.support.waiting import eventually

pytestmark = pytest.mark.faults

ABRUPT_DISCONNECTS = 1000
Stream = AsyncIterator[dict[str, Any]]


@pytest.fixture(scope="module", autouse=True)
def open_file_limit() -> None:
    """A thousand sockets at once need more than the usual 1 024 descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))


@pytest.fixture(scope="module")
def server(
    runpod_process: RunPodServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiProcess]:
    data_dir = tmp_path_factory.mktemp("abuse")
    env = {
        "ENVIRONMENT": "production",
        "AUTH_JWT_SECRET": JWT_SECRET,
        "DATA_DIR": str(data_dir),
        "RUNPOD_ENDPOINT_URL": runpod_process.url,
        "POLL_INTERVAL_S": "0.05",
        "WS_CONNECTION_INIT_TIMEOUT_S": "1",
        "WS_PING_INTERVAL_S": "3",
        "WS_PING_TIMEOUT_S": "5",
    }
    with ApiProcess(env) as process:
        yield process


@pytest.fixture(scope="module")
async def job_id(server: ApiProcess) -> str:
    """An export that stays queued (the fake RunPod is manual) for the whole module."""
    assets = await seed_assets(server.settings, "alice")
    client = GraphQLHTTP(server.graphql_url, token_for("alice"))
    job = await start_overlay(client, assets.project_id)
    await client.aclose()
    return job


async def connect_raw(server: ApiProcess, protocol: str) -> ClientConnection:
    return await websockets.connect(server.ws_url, subprotocols=[protocol])  # type: ignore[list-item]


async def closed_with(connection: ClientConnection, timeout: float = 10.0) -> int | None:
    await asyncio.wait_for(connection.wait_closed(), timeout)
    return connection.close_code


async def test_no_connection_init_in_time_closes_with_4408(server: ApiProcess) -> None:
    connection = await connect_raw(server, "graphql-transport-ws")

    assert await closed_with(connection) == 4408


FORGED = Authenticator("a-secret-that-is-not-the-servers-one").issue("alice")


@pytest.mark.parametrize("token", ["not-a-jwt", FORGED, None], ids=["garbage", "forged", "none"])
async def test_a_bad_or_missing_token_closes_with_4403(
    server: ApiProcess, token: str | None
) -> None:
    connection = await connect_raw(server, "graphql-transport-ws")
    payload = {"authorization": f"Bearer {token}"} if token else {}
    await connection.send(json.dumps({"type": "connection_init", "payload": payload}))

    assert await closed_with(connection) == 4403


async def test_a_bad_token_on_the_legacy_protocol_gets_connection_error(
    server: ApiProcess,
) -> None:
    with pytest.raises(SubscriptionError):
        await GraphQLWebSocket.connect(server.ws_url, "graphql-ws", params={"token": "forged"})


async def test_subscribing_before_connection_init_closes_with_4401(
    server: ApiProcess, job_id: str
) -> None:
    connection = await connect_raw(server, "graphql-transport-ws")
    payload = {"query": WATCH_JOB, "variables": {"id": job_id}}
    await connection.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))

    assert await closed_with(connection) == 4401


async def test_abruptly_dropped_subscribers_leave_nothing_behind(
    server: ApiProcess, job_id: str
) -> None:
    baseline = await eventually(lambda: _quiet(server))
    token = token_for("alice")

    async def subscribe() -> tuple[GraphQLWebSocket, Stream]:
        socket = await GraphQLWebSocket.connect(server.ws_url, params={"token": token})
        stream = socket.subscribe(WATCH_JOB, {"id": job_id})
        assert (await anext(stream))["exportJob"]["id"] == job_id
        return socket, stream  # a dropped stream would unsubscribe

    subscribed: list[tuple[GraphQLWebSocket, Stream]] = []
    for _ in range(ABRUPT_DISCONNECTS // 100):
        subscribed += await asyncio.gather(*(subscribe() for _ in range(100)))
    during = server.load()
    assert during["subscribers"] == baseline["subscribers"] + ABRUPT_DISCONNECTS
    assert during["subscription_groups"] == baseline["subscription_groups"] + 1

    for client, _ in subscribed:
        client.connection.transport.abort()  # no close handshake: the peer just vanishes

    settled = await eventually(lambda: _back_to(server, baseline), timeout=30)
    assert settled["subscribers"] == baseline["subscribers"]
    assert settled["subscription_groups"] == baseline["subscription_groups"]
    assert settled["tasks"] <= baseline["tasks"]


async def test_a_client_that_never_reads_is_closed_and_its_backlog_freed(
    server: ApiProcess, runpod_process: RunPodServerProcess, job_id: str
) -> None:
    control = runpod_process.control
    assert control is not None
    runpod_id = await eventually(
        lambda: next((run.id for run in control.runs() if run.input["job_id"] == job_id), None)
    )
    baseline = await eventually(lambda: _quiet(server))
    rss_before = server.rss_kb()
    # The client library stops reading the socket once one message waits unread,
    # and a small receive buffer (no autotuning) makes the server feel it soon.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.connect(("127.0.0.1", server.port))
    connection = await websockets.connect(
        server.ws_url,
        sock=sock,
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        max_queue=1,
        compression=None,  # repeated progress messages would compress to nothing
    )
    init = {"type": "connection_init", "payload": {"token": token_for("alice")}}
    await connection.send(json.dumps(init))
    payload = {"query": WATCH_JOB, "variables": {"id": job_id}}
    for op_id in range(100):
        message = {"id": str(op_id), "type": "subscribe", "payload": payload}
        await connection.send(json.dumps(message))

    # 150 updates x 100 operations x ~2 KB: about 30 MB if the server kept it all.
    for progress in range(1, 151):
        control.progress(runpod_id, min(progress, 99), "m" * 4000)
        await asyncio.sleep(0.06)
        if server.load()["subscribers"] == baseline["subscribers"]:
            break

    # Its subscriptions are released as soon as its queue overflows...
    assert server.load()["subscribers"] == baseline["subscribers"]
    assert server.rss_kb() - rss_before < 20_000
    assert "closing a slow websocket client" in server.log()
    # ...and once the client reads again, it finds its backlog cut short and
    # the server's close frame (or the keepalive failure, if the pings lost first).
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(connection.recv(), 10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code in {1008, 1011}
    await eventually(lambda: _back_to(server, baseline))


async def _quiet(server: ApiProcess) -> dict[str, int]:
    return await asyncio.to_thread(server.load)


async def _back_to(server: ApiProcess, baseline: dict[str, int]) -> dict[str, int] | None:
    current = await asyncio.to_thread(server.load)
    settled = (
        current["subscribers"] == baseline["subscribers"]
        and current["subscription_groups"] == baseline["subscription_groups"]
        and current["tasks"] <= baseline["tasks"]
    )
    return current if settled else None


def test_the_server_logged_no_unhandled_error(server: ApiProcess) -> None:
    assert "Traceback" not in server.log()
