"""Subscriptions asked for over plain HTTP, answered as streams from the hub.

`Accept: text/event-stream` gets SSE (the `graphql-sse` client's
distinct-connections mode, urql's `fetchSubscriptions`) and
`Accept: multipart/mixed;subscriptionSpec=1.0` gets multipart (Apollo Client).
A subscription asked for without either gets `STREAMING_REQUIRED`, which says how.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send
from strawberry.http import GraphQLRequestData
from strawberry.http.streaming import HTTPStreamTransport

from gql.context import Context
from gql.schema.errors import PublicError
from gql.subscriptions.connections import ConnectionLimitReached, UserConnections
from gql.subscriptions.http_streams import JSONEncoder, hub_stream
from gql.subscriptions.hub import SubscriptionHub
from gql.subscriptions.operations import is_subscription, shared_operation

STREAMING_REQUIRED = (
    "Subscriptions are streamed: send this request with 'Accept: text/event-stream' (SSE) "
    "or 'Accept: multipart/mixed;subscriptionSpec=1.0', or subscribe over the websocket "
    "on this URL (graphql-transport-ws)."
)

LEGACY_JSON = "application/json"


async def may_subscribe(request: Request) -> bool:
    """Only a document containing `subscription` can be one: queries and mutations,
    the bulk of requests, skip parsing their body twice."""
    if request.method == "GET":
        return "subscription" in request.query_params.get("query", "")
    return request.method == "POST" and b"subscription" in await request.body()


class HTTPSubscriptions:
    def __init__(
        self,
        hub: SubscriptionHub,
        connections: UserConnections,
        transports: dict[str, HTTPStreamTransport],
        *,
        encode_json: JSONEncoder,
        heartbeat_s: float | None,
    ) -> None:
        self._hub = hub
        self._connections = connections
        self._transports = transports
        self._encode_json = encode_json
        # None: each transport's own interval (15 s for SSE, 5 s for multipart).
        self._heartbeat_s = heartbeat_s

    def respond(
        self,
        data: GraphQLRequestData,
        context: Context,
        *,
        json_type: str = LEGACY_JSON,
        last_event_id: str | None = None,
    ) -> Response | None:
        """The answer to a parsed request if it is a subscription; None otherwise.

        An SSE client's `last_event_id` (the `Last-Event-ID` of a reconnection)
        resumes the stream from that change cursor, as `since` would.

        `json_type` is the JSON media type the client negotiated: in any but
        `application/json`, a subscription it cannot stream is refused with a 400
        and no `data`, as GraphQL over HTTP wants of a request that is not run."""
        if data.protocol == "http" and is_subscription(data.query, data.operation_name):
            error = PublicError(STREAMING_REQUIRED, "STREAMING_REQUIRED").formatted
            if json_type == LEGACY_JSON:
                return Response(json.dumps({"data": None, "errors": [error]}), media_type=json_type)
            return Response(json.dumps({"errors": [error]}), status_code=400, media_type=json_type)
        resume_from = (last_event_id or None) if data.protocol == "sse" else None
        operation = shared_operation(
            context.user_id,
            data.query,
            data.variables,
            data.operation_name,
            resume_from=resume_from,
        )
        transport = self._transports.get(data.protocol)
        if operation is None or transport is None:
            return None
        try:
            self._connections.acquire(operation.user_id)
        except ConnectionLimitReached as refusal:
            error = PublicError(str(refusal), "TOO_MANY_CONNECTIONS").formatted
            return JSONResponse({"data": None, "errors": [error]}, status_code=429)
        stream = hub_stream(
            self._hub,
            operation,
            context.services,
            transport,
            encode_json=self._encode_json,
            heartbeat_interval_s=self._heartbeat_s,
        )
        response = StreamingResponse(stream(), headers=transport.headers)
        return _ReleasingAtEnd(response, lambda: self._connections.release(operation.user_id))


class _ReleasingAtEnd(Response):
    """A subscription stream that gives its connection slot back when it ends,
    however it ends (even before its first byte)."""

    def __init__(self, stream: Response, release: Callable[[], None]) -> None:
        super().__init__(status_code=stream.status_code)
        self._stream = stream
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._stream(scope, receive, send)
        finally:
            self._release()
