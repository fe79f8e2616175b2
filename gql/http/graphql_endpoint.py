"""The GraphQL endpoint on `/graphql`: HTTP, GraphiQL, both websocket subprotocols,
and subscriptions streamed over HTTP (`Accept: text/event-stream` for SSE, as the
`graphql-sse` client's distinct-connections mode sends it, or
`multipart/mixed;subscriptionSpec=1.0` as Apollo Client does).

Subscriptions are multiplexed: identical ones share one execution
(`gql.subscriptions`), whichever transport their subscribers use.

HTTP requests, streamed ones included, authenticate with their `Authorization`
header. Websockets authenticate in `connection_init` (Apollo's and urql's `connectionParams`):
`{"authorization": "Bearer <token>"}`, `{"Authorization": ...}`, `{"token": ...}` or
`{"headers": {"Authorization": ...}}`; a bad token closes the socket (4403).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, overload

import strawberry
from fastapi import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.streaming import HTTPStreamTransport
from strawberry.subscriptions import (
    GRAPHQL_SSE_PROTOCOL,
    GRAPHQL_TRANSPORT_WS_PROTOCOL,
    GRAPHQL_WS_PROTOCOL,
    MULTIPART_SUBSCRIPTION_PROTOCOL,
)
from strawberry.types.unset import UNSET, UnsetType

from gql.auth.tokens import AuthError
from gql.context import Context, Services
from gql.schema.errors import PublicError
from gql.subscriptions.connections import ConnectionLimitReached, UserConnections
from gql.subscriptions.handlers import LegacyWSHandler, TransportWSHandler
from gql.subscriptions.http_streams import SSELineFeedTransport, hub_stream
from gql.subscriptions.hub import SubscriptionHub
from gql.subscriptions.operations import is_subscription, shared_operation
from gql.subscriptions.outbox import OutboxWebSocketAdapter

if TYPE_CHECKING:
    from cross_web import AsyncHTTPRequestAdapter

JSON_MEDIA_TYPES = frozenset({"application/json", "application/graphql-response+json"})
STREAMING_REQUIRED = (
    "Subscriptions are streamed: send this request with 'Accept: text/event-stream' (SSE) "
    "or 'Accept: multipart/mixed;subscriptionSpec=1.0', or subscribe over the websocket "
    "on this URL (graphql-transport-ws)."
)


def _authorization_from(params: Mapping[str, Any]) -> object:
    for key in ("authorization", "Authorization"):
        if key in params:
            return params[key]
    if "token" in params:
        token = params["token"]
        return f"Bearer {token}" if isinstance(token, str) else token
    headers = params.get("headers")
    if isinstance(headers, Mapping):
        return headers.get("Authorization") or headers.get("authorization")
    return None


def _accepts_json(accept: str) -> bool:
    media_types = (part.split(";", 1)[0].strip().lower() for part in accept.split(","))
    return any(media in JSON_MEDIA_TYPES for media in media_types)


async def _may_subscribe(request: Request) -> bool:
    """Only a document containing `subscription` can be one: queries and mutations,
    the bulk of requests, skip parsing their body twice."""
    if request.method == "GET":
        return "subscription" in request.query_params.get("query", "")
    return request.method == "POST" and b"subscription" in await request.body()


class GraphQLEndpoint(GraphQL[Context, None]):
    """A plain ASGI app, routed without FastAPI's dependency injection: every
    websocket holds on to what its request set up, so less is less per client."""

    stream_transport_classes_by_protocol = {
        **GraphQL.stream_transport_classes_by_protocol,
        GRAPHQL_SSE_PROTOCOL: SSELineFeedTransport,
    }
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler
    websocket_adapter_class = OutboxWebSocketAdapter

    def __init__(
        self,
        schema: strawberry.Schema,
        *,
        graphiql: bool = True,
        connection_init_timeout: timedelta = timedelta(seconds=10),
        max_connections_per_user: int = 100,
        stream_heartbeat_s: float | None = None,
    ) -> None:
        self.hub = SubscriptionHub(schema)
        self.connections = UserConnections(max_connections_per_user)
        # None: each transport's own interval (15 s for SSE, 5 s for multipart).
        self.stream_heartbeat_s = stream_heartbeat_s
        super().__init__(
            schema,
            graphql_ide="graphiql" if graphiql else None,
            subscription_protocols=(
                GRAPHQL_TRANSPORT_WS_PROTOCOL,
                GRAPHQL_WS_PROTOCOL,
                MULTIPART_SUBSCRIPTION_PROTOCOL,
                GRAPHQL_SSE_PROTOCOL,
            ),
            connection_init_wait_timeout=connection_init_timeout,
        )
        self._stream_transports: dict[str, HTTPStreamTransport] = {
            transport.protocol: transport
            for transport in (cls() for cls in self.stream_transport_classes_by_protocol.values())
        }

    @overload
    async def run(
        self, request: Request, context: Context = ..., root_value: None = ...
    ) -> Response: ...

    @overload
    async def run(
        self, request: WebSocket, context: Context = ..., root_value: None = ...
    ) -> WebSocket: ...

    async def run(
        self,
        request: Request | WebSocket,
        context: Context = UNSET,
        root_value: None = UNSET,
    ) -> Response | WebSocket:
        """Subscriptions over HTTP go to the hub; everything else is Strawberry's."""
        if isinstance(request, WebSocket) or context is not UNSET:
            return await super().run(request, context, root_value)
        context = await self.get_context(request, response=await self.get_sub_response(request))
        return await self._stream_from_hub(request, context) or await super().run(
            request, context, root_value
        )

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        """Streams are for subscriptions: a query or mutation from a client that also
        accepts JSON (urql sends `application/json, …, text/event-stream`) is
        answered in JSON, not as a one-event stream."""
        data = await super().parse_http_body(request)
        if (
            isinstance(data, GraphQLRequestData)
            and data.protocol != "http"
            and _accepts_json(request.headers.get("accept", ""))
            and not is_subscription(data.query, data.operation_name)
        ):
            data.protocol = "http"
        return data

    async def _stream_from_hub(self, request: Request, context: Context) -> Response | None:
        """The response to a subscription over HTTP; None for any other request."""
        adapter = self.request_adapter_class(request)
        if self.should_render_graphql_ide(adapter) or not await _may_subscribe(request):
            return None
        # The body is cached on the request: Strawberry can read it again afterwards.
        data = await self.parse_http_body(adapter)
        if not isinstance(data, GraphQLRequestData):
            return None
        if data.protocol == "http" and is_subscription(data.query, data.operation_name):
            error = PublicError(STREAMING_REQUIRED, "STREAMING_REQUIRED").formatted
            response = GraphQLHTTPResponse(data=None, errors=[error])
            return self.create_response(response, await self.get_sub_response(request))
        operation = shared_operation(
            context.user_id, data.query, data.variables, data.operation_name
        )
        transport = self._stream_transports.get(data.protocol)
        if operation is None or transport is None:
            return None
        try:
            self.connections.acquire(operation.user_id)
        except ConnectionLimitReached as refusal:
            error = PublicError(str(refusal), "TOO_MANY_CONNECTIONS").formatted
            return JSONResponse({"data": None, "errors": [error]}, status_code=429)
        stream = hub_stream(
            self.hub,
            operation,
            context.services,
            transport,
            encode_json=self.encode_json_string,
            heartbeat_interval_s=self.stream_heartbeat_s,
        )
        streaming = await self.create_streaming_response(
            request, stream, await self.get_sub_response(request), headers=transport.headers
        )
        return _ReleasingAtEnd(streaming, lambda: self.connections.release(operation.user_id))

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        services: Services = request.app.state.services
        if isinstance(request, WebSocket):
            # Known after `connection_init`; see `on_ws_connect`.
            return Context(services, user_id=None)
        try:
            user_id = await services.authenticator.user_from_authorization(
                request.headers.get("authorization")
            )
        except AuthError as error:
            raise HTTPException(
                status_code=401, detail=str(error), headers={"WWW-Authenticate": "Bearer"}
            ) from None
        return Context(services, user_id=user_id)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        params = context.connection_params if isinstance(context.connection_params, Mapping) else {}
        authenticator = context.services.authenticator
        try:
            user_id = await authenticator.user_from_authorization(_authorization_from(params))
        except AuthError:
            raise ConnectionRejectionError() from None
        if user_id is None:
            raise ConnectionRejectionError()
        self.connections.acquire(user_id)  # the handler closes 4429 when it refuses
        context.user_id = context.connection_slot = user_id
        context.connection_params = None  # the token is not needed past this point
        return await super().on_ws_connect(context)

    def release_connection(self, context: Context) -> None:
        """The websocket is gone: free its user's slot, if it held one."""
        if context.connection_slot is not None:
            self.connections.release(context.connection_slot)
            context.connection_slot = None


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
