"""Subscriptions streamed over HTTP responses (SSE and multipart), served by the hub.

An HTTP stream is one more kind of hub `Subscriber`: it joins the group of its
operation like a websocket subscriber does, and wraps the group's pre-encoded
payloads in its transport's frames (Strawberry's `SSETransport` or
`MultipartSubscriptionTransport`), with the transport's heartbeats in between.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncGenerator, Callable

from graphql import GraphQLError
from strawberry.http.streaming import (
    HTTPStreamTransport,
    MultipartSubscriptionTransport,
    SSETransport,
    merge_stream_with_heartbeat,
)

from gql.context import Services
from gql.subscriptions.hub import SubscriptionHub
from gql.subscriptions.operations import SharedOperation

# Like a websocket's outbox: a client that stops reading is given up past this.
MAX_QUEUED_FRAMES = 512

JSONEncoder = Callable[[object], str]


class SSELineFeedTransport(SSETransport):
    """Strawberry's SSE transport with LF line endings instead of CRLF.

    Both are valid SSE, but urql's `fetchSubscriptions` parser splits events on a
    blank LF line only, and never sees an event framed with CRLF."""

    def encode_event(self, event: str, data: str | None = None) -> str:
        return super().encode_event(event, data).replace("\r\n", "\n")

    def encode_comment(self, comment: str) -> str:
        return f": {comment}\n\n"


def frame_next(transport: HTTPStreamTransport, payload: str, cursor: str | None = None) -> str:
    """`transport.encode_next` for a payload that is already encoded JSON. Over SSE the
    change cursor is the event's `id`, which a reconnecting EventSource sends back
    as `Last-Event-ID`."""
    if isinstance(transport, SSETransport):
        event = transport.encode_event("next", payload)
        return event if cursor is None else f"id: {cursor}\n{event}"
    if isinstance(transport, MultipartSubscriptionTransport):
        return transport.encode_multipart_data(None, lambda _: f'{{"payload":{payload}}}')
    raise TypeError(f"no framing for {type(transport).__name__}")


class HTTPStreamSubscriber:
    """One subscription on one HTTP response: frames wait here until it is sent."""

    __slots__ = ("_frames", "_over", "_ready", "_transport")

    def __init__(self, transport: HTTPStreamTransport) -> None:
        self._transport = transport
        self._frames: deque[str] = deque()
        self._ready = asyncio.Event()
        self._over = False

    def deliver(self, payload: str, cursor: str | None = None) -> None:
        self._push(frame_next(self._transport, payload, cursor))

    def reject(self, errors: list[GraphQLError]) -> None:
        self._push(
            frame_next(self._transport, json.dumps({"errors": [e.formatted for e in errors]}))
        )
        self._push(self._transport.encode_complete())
        self._end()

    def complete(self) -> None:
        self._push(self._transport.encode_complete())
        self._end()

    async def frames(self) -> AsyncGenerator[str, None]:
        while True:
            while self._frames:
                yield self._frames.popleft()
            if self._over:
                return
            self._ready.clear()
            await self._ready.wait()

    def _push(self, frame: str) -> None:
        if self._over:
            return
        if len(self._frames) >= MAX_QUEUED_FRAMES:
            # The response ends without `complete`: the client sees the stream cut.
            self._frames.clear()
            self._end()
            return
        self._frames.append(frame)
        self._ready.set()

    def _end(self) -> None:
        self._over = True
        self._ready.set()


def hub_stream(
    hub: SubscriptionHub,
    operation: SharedOperation,
    services: Services,
    transport: HTTPStreamTransport,
    *,
    encode_json: JSONEncoder,
    heartbeat_interval_s: float | None = None,
) -> Callable[[], AsyncGenerator[str, None]]:
    """The response body of one subscription: its frames, with heartbeats between them.

    The hub is joined when the body starts streaming and left when it stops,
    whether the subscription completed or the client went away."""

    async def frames() -> AsyncGenerator[str, None]:
        subscriber = HTTPStreamSubscriber(transport)
        hub.join(operation, services, subscriber)
        try:
            async for frame in subscriber.frames():
                yield frame
        finally:
            hub.leave(subscriber)

    return merge_stream_with_heartbeat(
        frames,
        lambda: transport.heartbeat_message(encode_json),
        interval=heartbeat_interval_s or transport.heartbeat_interval,
        send_initial_heartbeat=transport.send_initial_heartbeat,
    )
