"""A minimal `websockets` broadcast server: the fan-out baseline.

    python -m bench.raw_ws_server --port 0

It speaks just enough graphql-transport-ws for the benches' subscribers
(`connection_init` -> `connection_ack`; `subscribe` -> the job's state at once)
and, for each command on its control socket (`/control`, JSON
`{"job", "progress", "message"}`, answered `ok`), encodes the job's new state
once per subscription id and sends it with `websockets.broadcast` to every
subscriber of that job: the same JSON frames the API sends, with no GraphQL,
database or authentication behind them. The first line on stdout is
`listening on ws://127.0.0.1:<port>`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import websockets
from websockets.asyncio.server import ServerConnection, serve
from websockets.typing import Subprotocol

from bench.harness import raise_nofile

PROTOCOL = Subprotocol("graphql-transport-ws")


class Broadcaster:
    def __init__(self) -> None:
        self.states: dict[str, dict[str, Any]] = {}
        # job id -> subscription id -> sockets: one encoding per (job, id).
        self.groups: dict[str, dict[str, set[ServerConnection]]] = defaultdict(
            lambda: defaultdict(set)
        )

    def state(self, job_id: str) -> dict[str, Any]:
        if job_id not in self.states:
            self.states[job_id] = {
                "id": job_id,
                "status": "PROCESSING",
                "progress": 1,
                "message": "encoding",
                "error": None,
                "downloadUrl": None,
            }
        return self.states[job_id]

    def publish(self, job_id: str, progress: int, message: str) -> None:
        state = self.state(job_id)
        state["progress"], state["message"] = progress, message
        for op_id, sockets in self.groups.get(job_id, {}).items():
            websockets.broadcast(sockets, _next(op_id, state))

    async def control(self, socket: ServerConnection) -> None:
        async for raw in socket:
            command = json.loads(raw)
            self.publish(command["job"], command["progress"], command["message"])
            await socket.send("ok")

    async def subscriber(self, socket: ServerConnection) -> None:
        joined: list[tuple[str, str]] = []
        try:
            async for raw in socket:
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "connection_init":
                    await socket.send('{"type":"connection_ack"}')
                elif kind == "subscribe":
                    op_id, job_id = message["id"], message["payload"]["variables"]["id"]
                    self.groups[job_id][op_id].add(socket)
                    joined.append((job_id, op_id))
                    await socket.send(_next(op_id, self.state(job_id)))
                elif kind == "ping":
                    await socket.send('{"type":"pong"}')
        finally:
            for job_id, op_id in joined:
                self.groups[job_id][op_id].discard(socket)

    async def handle(self, socket: ServerConnection) -> None:
        if socket.request is not None and socket.request.path == "/control":
            await self.control(socket)
        else:
            await self.subscriber(socket)


def _next(op_id: str, state: dict[str, Any]) -> str:
    return json.dumps({"id": op_id, "type": "next", "payload": {"data": {"exportJob": state}}})


def _select(_: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    # Subscribers ask for graphql-transport-ws; the control socket asks for nothing.
    return PROTOCOL if PROTOCOL in offered else None


async def main(port: int) -> None:
    raise_nofile()
    broadcaster = Broadcaster()
    stop = asyncio.get_running_loop().create_future()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.cancel)
    async with serve(
        broadcaster.handle,
        "127.0.0.1",
        port,
        select_subprotocol=_select,
        compression=None,
        backlog=4096,
    ) as server:
        bound = next(iter(server.sockets)).getsockname()[1]
        print(f"listening on ws://127.0.0.1:{bound}", flush=True)
        with contextlib.suppress(asyncio.CancelledError):
            await stop


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    arguments = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(main(arguments.port))
    else:
        uvloop.run(main(arguments.port))
