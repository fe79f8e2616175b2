"""Frames handed straight to uvicorn's websocket connection, under a real uvicorn.

The server runs with the API's own options (`server_options`), so these tests
fail if the installed uvicorn stops offering the direct path, and not only if
the path itself misbehaves.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import uvicorn
import websockets

from gql.startup.process import server_options
from gql.subscriptions import direct_frames
from gql.subscriptions.direct_frames import Sent
from tests.support.app_server import make_settings
from tests.support.waiting import eventually

Session = Callable[[Any, Callable[[], Awaitable[Any]], Any], Awaitable[None]]
BIG_FRAME = "x" * 65_536


class _Server:
    """uvicorn serving one websocket session function on a free port."""

    def __init__(self, session: Session) -> None:
        self.settings = make_settings()
        self.session = session
        self.url = f"ws://127.0.0.1:{self.settings.port}/"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        await self.session(direct_frames.connection_of(send), receive, send)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Session], Awaitable[str]]]:
    servers: list[uvicorn.Server] = []
    tasks: list[asyncio.Task[None]] = []

    async def start(session: Session) -> str:
        app = _Server(session)
        options = {**server_options(app.settings), "log_level": "warning", "lifespan": "off"}
        server = uvicorn.Server(uvicorn.Config(app, **options))
        servers.append(server)
        tasks.append(asyncio.create_task(server.serve()))
        await eventually(lambda: server.started)
        return app.url

    yield start
    for server in servers:
        server.should_exit = True
    await asyncio.gather(*tasks)


async def test_direct_frames_and_asgi_sends_reach_the_client_in_order(
    serve: Callable[[Session], Awaitable[str]],
) -> None:
    outcomes: list[Sent] = []

    async def session(connection: Any, receive: Any, send: Any) -> None:
        assert connection is not None, "the installed uvicorn no longer takes frames directly"
        for index in range(6):
            if index % 2:
                outcomes.append(direct_frames.send_text(connection, f"frame {index}"))
            else:
                await send({"type": "websocket.send", "text": f"frame {index}"})
        await receive()

    url = await serve(session)
    async with websockets.connect(url) as client:
        received = [await asyncio.wait_for(client.recv(), 10) for _ in range(6)]
    assert received == [f"frame {index}" for index in range(6)]
    assert outcomes == [Sent.SENT] * 3


async def test_a_full_buffer_defers_to_asgi_and_a_closed_connection_is_gone(
    serve: Callable[[Session], Awaitable[str]],
) -> None:
    outcomes: list[Sent] = []
    buffer_full = asyncio.Event()
    client_gone = asyncio.Event()

    async def session(connection: Any, receive: Any, send: Any) -> None:
        # The client reads nothing: the kernel's buffers, then the transport's, fill up.
        for _ in range(10_000):
            outcomes.append(direct_frames.send_text(connection, BIG_FRAME))
            if outcomes[-1] is not Sent.SENT:
                break
            await asyncio.sleep(0)
        buffer_full.set()
        assert (await receive())["type"] == "websocket.disconnect"
        outcomes.append(direct_frames.send_text(connection, "after the client left"))
        client_gone.set()

    url = await serve(session)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.setblocking(False)
    host, port = url.removeprefix("ws://").removesuffix("/").split(":")
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    client = await websockets.connect(url, sock=sock, max_queue=1, compression=None)
    await asyncio.wait_for(buffer_full.wait(), 30)
    assert client.transport is not None
    client.transport.abort()
    await asyncio.wait_for(client_gone.wait(), 30)
    assert outcomes[:-2] == [Sent.SENT] * (len(outcomes) - 2)
    assert outcomes[-2:] == [Sent.USE_ASGI, Sent.GONE]


def test_a_send_that_is_not_uvicorns_connection_goes_through_asgi() -> None:
    async def send(message: Any) -> None:
        return None

    assert direct_frames.connection_of(send) is None
    assert direct_frames.connection_of(None) is None
