"""Real GraphQL clients: HTTP (httpx) and websockets in both subprotocols."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any, Literal, Self

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

Protocol = Literal["graphql-transport-ws", "graphql-ws"]
PROTOCOLS: tuple[Protocol, ...] = ("graphql-transport-ws", "graphql-ws")


class GraphQLHTTP:
    def __init__(self, url: str, token: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.AsyncClient(headers=headers, timeout=10)
        self.url = url

    async def post(self, query: str, variables: dict[str, Any] | None = None) -> httpx.Response:
        return await self._client.post(self.url, json={"query": query, "variables": variables})

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The `data` of a successful answer; fails the test on any GraphQL error."""
        response = await self.post(query, variables)
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class SubscriptionError(Exception):
    def __init__(self, payload: Any) -> None:
        super().__init__(json.dumps(payload))
        self.payload = payload


class GraphQLWebSocket:
    """One connection; `subscribe` runs operations over it, in either protocol."""

    def __init__(self, connection: ClientConnection, protocol: Protocol) -> None:
        self.connection = connection
        self.protocol = protocol
        self._ids = itertools.count(1)
        self._queues: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    async def connect(
        cls,
        url: str,
        protocol: Protocol = "graphql-transport-ws",
        params: dict[str, Any] | None = None,
    ) -> GraphQLWebSocket:
        connection = await websockets.connect(url, subprotocols=[protocol])  # type: ignore[list-item]
        socket = cls(connection, protocol)
        await connection.send(json.dumps({"type": "connection_init", "payload": params or {}}))
        while True:
            message = json.loads(await asyncio.wait_for(connection.recv(), 10))
            if message["type"] == "connection_ack":
                break
            if message["type"] == "connection_error":
                await connection.close()
                raise SubscriptionError(message.get("payload"))
        socket._reader = asyncio.create_task(socket._read())
        return socket

    async def _read(self) -> None:
        try:
            async for raw in self.connection:
                message = json.loads(raw)
                if message.get("id") in self._queues:
                    self._queues[message["id"]].put_nowait(message)
        except websockets.ConnectionClosed:
            pass
        for queue in self._queues.values():
            queue.put_nowait({"type": "closed"})

    async def subscribe(
        self, query: str, variables: dict[str, Any] | None = None, *, op_id: str | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Yields each result's `data`; raises SubscriptionError on an error message."""
        op_id = op_id or str(next(self._ids))
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._queues[op_id] = queue
        start = "subscribe" if self.protocol == "graphql-transport-ws" else "start"
        await self.connection.send(
            json.dumps(
                {"id": op_id, "type": start, "payload": {"query": query, "variables": variables}}
            )
        )
        finished = False
        try:
            while True:
                message = await queue.get()
                kind = message["type"]
                if kind in ("next", "data"):
                    payload = message["payload"]
                    if payload.get("errors"):
                        finished = True
                        raise SubscriptionError(payload["errors"])
                    yield payload["data"]
                elif kind == "error":
                    finished = True
                    raise SubscriptionError(message.get("payload"))
                elif kind in ("complete", "closed"):
                    finished = True
                    return
        finally:
            self._queues.pop(op_id, None)
            if not finished:
                await self._unsubscribe(op_id)

    async def _unsubscribe(self, op_id: str) -> None:
        """Tell the server the client stopped listening (an abandoned loop)."""
        stop = "complete" if self.protocol == "graphql-transport-ws" else "stop"
        with contextlib.suppress(websockets.ConnectionClosed):
            await self.connection.send(json.dumps({"id": op_id, "type": stop}))

    async def close(self) -> None:
        await self.connection.close()
        if self._reader is not None:
            await self._reader


async def collect(
    stream: AsyncIterator[dict[str, Any]], *, timeout: float = 20.0
) -> list[dict[str, Any]]:
    """Every message until the subscription completes."""

    async def drain() -> list[dict[str, Any]]:
        return [item async for item in stream]

    return await asyncio.wait_for(drain(), timeout)
