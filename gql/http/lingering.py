"""Lingering close: an answer given before the request's body was read waits for
the rest of that body, read and discarded, before the response ends.

Clients such as async httpx, aiohttp, Node's fetch and browsers send a whole
body before they read any of the response. Refused early (a 413 for a body over
`MAX_REQUEST_BYTES`, a 401), such a client is still sending when the server
closes, and closing a socket with unread data makes the kernel reset the
connection: the client sees a connection reset instead of the answer. As nginx
does, the response is written at once, and its end (and so the close) waits
while the rest of the body is read and thrown away, chunk by chunk, so memory
stays flat; at most `LINGER_MAX_BYTES` and `LINGER_MAX_S`, and not at all when
the declared length is already past the byte bound. Only a response of known
length lingers: the client can read it whole while the body is drained (a
client that stops sending instead, after `Expect: 100-continue`, closes and
ends the drain).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gql.http.request_size import declared_length


@dataclass
class _RequestBody:
    declared: int | None
    pending: bool
    received: int = 0

    @classmethod
    def of(cls, scope: Scope) -> _RequestBody:
        headers = dict(scope["headers"])
        declared = declared_length(headers)
        chunked = b"transfer-encoding" in headers
        return cls(declared=declared, pending=chunked or bool(declared))

    def saw(self, message: Message) -> None:
        if message["type"] == "http.disconnect":
            self.pending = False
        elif message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            self.pending = message.get("more_body", False)


class LingeringClose:
    def __init__(self, app: ASGIApp, *, max_bytes: int, max_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_s = max_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = _RequestBody.of(scope) if scope["type"] == "http" else None
        if body is None or not body.pending or self.max_bytes == 0:
            await self.app(scope, receive, send)
            return
        length_known = False

        async def tracking_receive() -> Message:
            message = await receive()
            body.saw(message)
            return message

        async def lingering_send(message: Message) -> None:
            nonlocal length_known
            if message["type"] == "http.response.start":
                length_known = any(name == b"content-length" for name, _ in message["headers"])
            elif (
                message["type"] == "http.response.body"
                and not message.get("more_body", False)
                and body.pending
                and length_known
            ):
                await send({**message, "more_body": True})
                await self._drain(tracking_receive, body)
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app(scope, tracking_receive, lingering_send)

    async def _drain(self, receive: Receive, body: _RequestBody) -> None:
        if body.declared is not None and body.declared - body.received > self.max_bytes:
            return  # it could not reach the end anyway
        limit = body.received + self.max_bytes
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.max_s):
                while body.pending and body.received <= limit:
                    await receive()
