"""A lean websocket client on `asyncio.Protocol`, speaking graphql-transport-ws.

Thousands of these share a load-generator process, and that process shares the
machine's CPUs with the server under test; so a received message costs one frame
parse and one `json.loads`, with no task, queue or future per message. Each
`Subscription` is one connection carrying one subscription (id "1"). No
compression is offered, so neither side spends CPU on permessage-deflate.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

_OP_CONT, _OP_TEXT, _OP_CLOSE, _OP_PING, _OP_PONG = 0x0, 0x1, 0x8, 0x9, 0xA
_MAX_HEADER = 16 * 1024


class WebSocketError(Exception):
    """The connection failed, was refused or answered outside the protocol."""


def _frame(opcode: int, data: bytes) -> bytes:
    """One final client frame (clients must mask what they send)."""
    mask = os.urandom(4)
    size = len(data)
    if size < 126:
        header = bytes((0x80 | opcode, 0x80 | size))
    elif size < 1 << 16:
        header = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8, "big")
    if size:
        key = (mask * (size // 4 + 1))[:size]
        data = (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(size, "big")
    return header + mask + data


class WebSocket(asyncio.Protocol):
    """The HTTP upgrade, then frames; subclasses handle text messages."""

    subprotocol: str | None = None

    def __init__(self, host: str, port: int, path: str) -> None:
        self._request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
            + (f"Sec-WebSocket-Protocol: {self.subprotocol}\r\n" if self.subprotocol else "")
            + "\r\n"
        ).encode()
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._upgraded = False
        self._fragments: list[bytes] = []
        self.closed = asyncio.get_running_loop().create_future()
        """Resolves (to an error or None) when the connection ends."""

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self._transport = cast(asyncio.Transport, transport)
        self._transport.write(self._request)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        error = WebSocketError(f"connection lost: {exc!r}") if exc else None
        if not self.closed.done():
            self.closed.set_result(error)
        self.on_closed(error or WebSocketError("closed by the server"))

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self._buffer += data
        if not self._upgraded and not self._upgrade():
            return
        self._read_frames(now)

    # --- for subclasses ---

    def on_open(self) -> None:
        """The upgrade succeeded."""

    def on_text(self, text: bytes, now: float) -> None:
        """One text message; `now` is when its bytes arrived (time.time())."""

    def on_closed(self, error: Exception) -> None:
        """The connection ended; called once."""

    def send_text(self, text: str) -> None:
        if self._transport is not None:
            self._transport.write(_frame(_OP_TEXT, text.encode()))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.write(_frame(_OP_CLOSE, (1000).to_bytes(2, "big")))
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    # --- internals ---

    def _fail(self, message: str) -> None:
        error = WebSocketError(message)
        if not self.closed.done():
            self.closed.set_result(error)
        self.abort()

    def _upgrade(self) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > _MAX_HEADER:
                self._fail("oversized upgrade response")
            return False
        head = bytes(self._buffer[:end]).decode("latin-1")
        del self._buffer[: end + 4]
        status = head.split("\r\n", 1)[0]
        if " 101 " not in f"{status} ":
            self._fail(f"upgrade refused: {status}")
            return False
        self._upgraded = True
        self.on_open()
        return True

    def _read_frames(self, now: float) -> None:
        buffer = self._buffer
        size = len(buffer)
        offset = 0
        while size - offset >= 2:
            first, second = buffer[offset], buffer[offset + 1]
            length = second & 0x7F
            start = offset + 2
            if length == 126:
                if size - offset < 4:
                    break
                length = int.from_bytes(buffer[start : start + 2], "big")
                start += 2
            elif length == 127:
                if size - offset < 10:
                    break
                length = int.from_bytes(buffer[start : start + 8], "big")
                start += 8
            if second & 0x80:
                self._fail("the server masked a frame")
                return
            if size < start + length:
                break
            payload = bytes(buffer[start : start + length])
            offset = start + length
            self._on_frame(first & 0x80 != 0, first & 0x0F, payload, now)
        if offset:
            del buffer[:offset]

    def _on_frame(self, final: bool, opcode: int, payload: bytes, now: float) -> None:
        if opcode in (_OP_TEXT, _OP_CONT):
            self._fragments.append(payload)
            if final:
                text = b"".join(self._fragments)
                self._fragments.clear()
                self.on_text(text, now)
        elif opcode == _OP_PING and self._transport is not None:
            self._transport.write(_frame(_OP_PONG, payload))
        elif opcode == _OP_CLOSE:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            if not self.closed.done():
                self.closed.set_result(WebSocketError(f"closed by the server ({code})"))
            self.close()


P = TypeVar("P", bound="WebSocket")
OnNext = Callable[["Subscription", dict[str, Any], float], None]


class Subscription(WebSocket):
    """connection_init, then one `subscribe`; every `next` goes to `on_next`.

    `ready` resolves at the first `next` (the subscription's current state), or
    fails with the reason it never came.
    """

    subprotocol = "graphql-transport-ws"

    def __init__(
        self,
        host: str,
        port: int,
        path: str,
        *,
        init_payload: dict[str, Any],
        query: str,
        variables: dict[str, Any],
        on_next: OnNext,
        tag: int = 0,
    ) -> None:
        super().__init__(host, port, path)
        self._init = json.dumps({"type": "connection_init", "payload": init_payload})
        self._subscribe = json.dumps(
            {"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}}
        )
        self._on_next = on_next
        self.tag = tag
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.errors: list[str] = []
        self.completed = False

    def on_open(self) -> None:
        self.send_text(self._init)

    def on_text(self, text: bytes, now: float) -> None:
        message = json.loads(text)
        kind = message.get("type")
        if kind == "next":
            payload = message.get("payload") or {}
            if payload.get("errors"):
                self._error(f"next with errors: {payload['errors']}")
                return
            if not self.ready.done():
                self.ready.set_result(None)
            self._on_next(self, payload, now)
        elif kind == "connection_ack":
            self.send_text(self._subscribe)
        elif kind == "ping":
            self.send_text('{"type":"pong"}')
        elif kind == "error":
            self._error(f"error: {message.get('payload')}")
        elif kind == "complete":
            self.completed = True

    def on_closed(self, error: Exception) -> None:
        if not self.ready.done():
            self.ready.set_exception(error)

    def _error(self, text: str) -> None:
        self.errors.append(text[:300])
        if not self.ready.done():
            self.ready.set_exception(WebSocketError(text[:300]))


class TextChannel(WebSocket):
    """A plain websocket for request/answer text messages (the raw server's control)."""

    def __init__(self, host: str, port: int, path: str) -> None:
        super().__init__(host, port, path)
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self._answers: asyncio.Queue[bytes] = asyncio.Queue()

    def on_open(self) -> None:
        self.opened.set_result(None)

    def on_text(self, text: bytes, now: float) -> None:
        self._answers.put_nowait(text)

    def on_closed(self, error: Exception) -> None:
        if not self.opened.done():
            self.opened.set_exception(error)

    async def ask(self, text: str, timeout_s: float) -> bytes:
        self.send_text(text)
        return await asyncio.wait_for(self._answers.get(), timeout_s)


async def connect(factory: Callable[[], P], host: str, port: int) -> P:
    """Open the TCP connection; the upgrade then proceeds inside the protocol."""
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(factory, host, port)
    return protocol
