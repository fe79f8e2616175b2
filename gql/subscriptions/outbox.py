"""A websocket adapter whose sends never wait on the client.

A frame goes straight into the connection's buffer when it has room
(`direct_frames`). When it has not, frames go into a bounded per-connection
queue drained by a short-lived writer task, so one slow or stalled client cannot
hold up a broadcast to thousands of others. A client that stops reading is given
up once its queue is full, which keeps the server's memory bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Coroutine, Generator, Mapping
from typing import Any

from strawberry.asgi import ASGIWebSocketAdapter

from gql.subscriptions import direct_frames
from gql.subscriptions.direct_frames import Sent

logger = logging.getLogger(__name__)

MAX_QUEUED_FRAMES = 512
CLOSE_TIMEOUT_S = 5.0
SLOW_CONSUMER_CODE = 1008  # policy violation


class OutboxWebSocketAdapter(ASGIWebSocketAdapter):
    max_queued_frames = MAX_QUEUED_FRAMES

    def __init__(self, view: Any, request: Any, response: Any) -> None:
        super().__init__(view, request, response)
        # Made on first use: an idle connection (the common case) holds no queue.
        self._frames: deque[str] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        # uvicorn's connection, when frames can be handed to it directly.
        self._connection = direct_frames.connection_of(getattr(self.ws, "_send", None))
        # Set by the protocol handler: releases the connection's subscriptions.
        self.on_abandon: Callable[[], None] | None = None

    def send_frame(self, frame: str) -> None:
        """Send an encoded message, or queue it behind earlier ones; returns at once."""
        if self._closing:
            return
        if self._writer is None:
            if self._connection is not None:
                sent = direct_frames.send_text(self._connection, frame)
                if sent is Sent.SENT:
                    return
                if sent is Sent.GONE:
                    self._gone()
                    return
            # Idle connection: start the send right here. It nearly always
            # completes without waiting, which saves a task per message.
            send = self.ws.send_text(frame)
            try:
                waiting_on = send.send(None)
            except StopIteration:
                return
            except Exception:
                self._gone()
                return
            self._frames = deque()
            self._writer = asyncio.create_task(
                self._write(self._frames, _Resumed(send, waiting_on))
            )
            return
        assert self._frames is not None
        if len(self._frames) >= self.max_queued_frames:
            self._abandon("Too many unsent messages")
            return
        self._frames.append(frame)

    async def send_json(self, message: Mapping[str, object]) -> None:
        encoded = self.view.encode_json(message)
        self.send_frame(encoded.decode() if isinstance(encoded, bytes) else encoded)

    async def close(self, code: int, reason: str) -> None:
        """Close after what is already queued has gone out (for a bounded time)."""
        if self._writer is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._writer), CLOSE_TIMEOUT_S)
        self._closing = True
        await self._close_socket(code, reason)

    async def _write(self, frames: deque[str], started: _Resumed) -> None:
        try:
            await started
            while frames:
                # No timeout here (a timer per frame costs more than the send): a
                # blocked send lets the queue fill up, which gives the client up.
                await self.ws.send_text(frames.popleft())
        except Exception:
            self._gone()
        finally:
            self._writer = None
            if self._frames is frames:
                self._frames = None

    def _gone(self) -> None:
        """The peer went away mid-send: nothing more can reach it."""
        self._closing = True
        self._frames = None

    def _abandon(self, reason: str) -> None:
        """Drop a client that cannot keep up: free its queue and close it."""
        if self._closing:
            return
        self._closing = True
        self._frames = None
        if self._writer is not None:
            self._writer.cancel()
            self._writer = None
        logger.warning("closing a slow websocket client", extra={"reason": reason})
        if self.on_abandon is not None:
            self.on_abandon()
        closing = asyncio.create_task(self._close_socket(SLOW_CONSUMER_CODE, reason))
        _background.add(closing)
        closing.add_done_callback(_background.discard)

    async def _close_socket(self, code: int, reason: str) -> None:
        # A client that reads nothing cannot take the close frame either; the
        # server's keepalive ping timeout (WS_PING_TIMEOUT_S) then drops it.
        with contextlib.suppress(Exception):
            await self.ws.close(code=code, reason=reason)


# Keeps fire-and-forget close tasks referenced until they finish.
_background: set[asyncio.Task[None]] = set()


class _Resumed:
    """Finishes, inside a task, a coroutine that was started outside one.

    `send_frame` runs a send's first step itself; when that step has to wait
    (the socket's buffer is full) it yields the future it waits on. Awaiting this
    object hands that future to the running task and resumes the coroutine when
    it is done, exactly as if the task had run it from the start (what Python
    3.12's eager tasks do).
    """

    __slots__ = ("_coroutine", "_waiting_on")

    def __init__(self, coroutine: Coroutine[Any, Any, None], waiting_on: Any) -> None:
        self._coroutine = coroutine
        self._waiting_on = waiting_on

    def __await__(self) -> Generator[Any, None, None]:
        waiting_on = self._waiting_on
        while True:
            try:
                yield waiting_on
            except BaseException as error:  # cancellation included: pass it on
                try:
                    waiting_on = self._coroutine.throw(error)
                except StopIteration:
                    return
                continue
            try:
                waiting_on = self._coroutine.send(None)
            except StopIteration:
                return
