"""A websocket adapter whose sends never wait on the client.

Frames go into a bounded per-connection queue drained by a short-lived writer
task, so one slow or stalled client cannot hold up a broadcast to thousands of
others. A client that stops reading is closed once its queue is full or a
single send has waited too long, which keeps the server's memory bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from strawberry.asgi import ASGIWebSocketAdapter

logger = logging.getLogger(__name__)

MAX_QUEUED_FRAMES = 512
SEND_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 5.0
SLOW_CONSUMER_CODE = 1008  # policy violation


class OutboxWebSocketAdapter(ASGIWebSocketAdapter):
    max_queued_frames = MAX_QUEUED_FRAMES
    send_timeout_s = SEND_TIMEOUT_S

    def __init__(self, view: Any, request: Any, response: Any) -> None:
        super().__init__(view, request, response)
        # Made on first use: an idle connection (the common case) holds no queue.
        self._frames: deque[str] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        # Set by the protocol handler: releases the connection's subscriptions.
        self.on_abandon: Callable[[], None] | None = None

    @property
    def queued(self) -> int:
        return len(self._frames) if self._frames else 0

    def send_frame(self, frame: str) -> None:
        """Queue an encoded message; returns at once."""
        if self._closing:
            return
        if self._frames is None:
            self._frames = deque()
        elif len(self._frames) >= self.max_queued_frames:
            self._abandon("Too many unsent messages")
            return
        self._frames.append(frame)
        if self._writer is None:
            self._writer = asyncio.create_task(self._write(self._frames))

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

    async def _write(self, frames: deque[str]) -> None:
        try:
            while frames:
                frame = frames.popleft()
                async with asyncio.timeout(self.send_timeout_s):
                    await self.ws.send_text(frame)
        except TimeoutError:
            self._writer = None
            self._abandon("Client is not reading")
        except Exception:
            self._closing = True
            frames.clear()
        finally:
            self._writer = None
            if not frames and self._frames is frames:
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
