"""The GraphQL endpoint on `/graphql`: HTTP, GraphiQL, both websocket subprotocols,
and subscriptions streamed over HTTP (`gql.subscriptions.over_http`).

Subscriptions are multiplexed: identical ones share one execution
(`gql.subscriptions`), whichever transport their subscribers use. HTTP requests
authenticate with their `Authorization` header, websockets in `connection_init`
(`gql.auth.credentials`); a bad token is a 401, or closes the socket with 4403.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, overload

import strawberry
from cross_web import HTTPException
from fastapi import HTTPException as FastAPIHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.subscriptions import (
    GRAPHQL_SSE_PROTOCOL,
    GRAPHQL_TRANSPORT_WS_PROTOCOL,
    GRAPHQL_WS_PROTOCOL,
    MULTIPART_SUBSCRIPTION_PROTOCOL,
)
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from gql.auth.credentials import connection_user
from gql.auth.tokens import AuthError
from gql.context import Context
from gql.http.media_types import (
    APPLICATION_JSON,
    GRAPHQL_RESPONSE_JSON,
    accepts_any,
    json_result_type,
)
from gql.http.request_errors import (
    MUTATION_OVER_GET,
    NOT_ACCEPTABLE,
    MethodNotAllowed,
    error_response,
    is_request_error,
)
from gql.runtime import runtime_of
from gql.subscriptions.connections import UserConnections
from gql.subscriptions.handlers import LegacyWSHandler, TransportWSHandler
from gql.subscriptions.http_streams import SSELineFeedTransport
from gql.subscriptions.hub import SubscriptionHub
from gql.subscriptions.operations import is_mutation, is_subscription
from gql.subscriptions.outbox import OutboxWebSocketAdapter
from gql.subscriptions.over_http import HTTPSubscriptions, may_subscribe

if TYPE_CHECKING:
    from cross_web import AsyncHTTPRequestAdapter
    from starlette.types import Receive, Scope, Send


class _SubResponse(Response):
    """Strawberry's per-request response stub, with the media type negotiated for
    the request's result."""

    def __init__(self, result_type: str) -> None:
        super().__init__()
        self.status_code = None  # type: ignore[assignment]  # unset: Strawberry's 200
        del self.headers["content-length"]
        self.result_type = result_type


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
        self.http_subscriptions = HTTPSubscriptions(
            self.hub,
            self.connections,
            {
                transport.protocol: transport
                for transport in (
                    cls() for cls in self.stream_transport_classes_by_protocol.values()
                )
            },
            encode_json=self.encode_json_string,
            heartbeat_s=stream_heartbeat_s,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Strawberry's, but a refusal is answered in the media type the client asked for."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await self.run(request)
        except HTTPException as error:
            response = error_response(error, json_result_type(request.headers.get("accept")))
        await response(scope, receive, send)

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
        if not accepts_any(request.headers.get("accept")) and not self.should_render_graphql_ide(
            self.request_adapter_class(request)
        ):
            raise HTTPException(406, NOT_ACCEPTABLE)
        context = await self.get_context(request, response=await self.get_sub_response(request))
        return await self._subscription_over_http(request, context) or await super().run(
            request, context, root_value
        )

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        """A mutation sent with GET is a 405, whatever it accepts. Streams are for
        subscriptions: a query or mutation from a client that also accepts JSON
        (urql sends `application/json, …, text/event-stream`) is answered in JSON,
        not as a one-event stream."""
        data = await super().parse_http_body(request)
        # Checked here for streams too: Strawberry reports it only inside the stream.
        if (
            request.method == "GET"
            and isinstance(data, GraphQLRequestData)
            and is_mutation(data.query, data.operation_name)
        ):
            raise MethodNotAllowed(MUTATION_OVER_GET)
        if (
            isinstance(data, GraphQLRequestData)
            and data.protocol != "http"
            and json_result_type(request.headers.get("accept")) is not None
            and not is_subscription(data.query, data.operation_name)
        ):
            data.protocol = "http"
        return data

    async def execute_single(  # noqa: PLR0917  (Strawberry's signature)
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        try:
            return await super().execute_single(
                request, request_adapter, sub_response, context, root_value, request_data
            )
        except HTTPException as error:
            # A document too long for `is_mutation`'s look in `parse_http_body`.
            if request_adapter.method == "GET" and isinstance(
                error.__cause__, InvalidOperationTypeError
            ):
                raise MethodNotAllowed(MUTATION_OVER_GET) from error.__cause__
            raise

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        return _SubResponse(json_result_type(request.headers.get("accept")) or APPLICATION_JSON)

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        response = await super().process_result(request, result)
        if is_request_error(result) and (
            json_result_type(request.headers.get("accept")) == GRAPHQL_RESPONSE_JSON
        ):
            del response["data"]
        return response

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        """In `application/graphql-response+json`, a result without `data` (a request
        error) is a 400."""
        response = super().create_response(response_data, sub_response)
        if isinstance(sub_response, _SubResponse) and sub_response.result_type != APPLICATION_JSON:
            response.headers["content-type"] = sub_response.result_type
            if not sub_response.status_code and "data" not in response_data:
                response.status_code = 400
        return response

    async def _subscription_over_http(self, request: Request, context: Context) -> Response | None:
        """The response to a subscription over HTTP; None for any other request."""
        adapter = self.request_adapter_class(request)
        if self.should_render_graphql_ide(adapter) or not await may_subscribe(request):
            return None
        # The body is cached on the request: Strawberry can read it again afterwards.
        data = await self.parse_http_body(adapter)
        if not isinstance(data, GraphQLRequestData):
            return None
        json_type = json_result_type(request.headers.get("accept")) or APPLICATION_JSON
        return self.http_subscriptions.respond(
            data,
            context,
            json_type=json_type,
            last_event_id=request.headers.get("last-event-id"),
        )

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        services = runtime_of(request.app).services
        if isinstance(request, WebSocket):
            # Known after `connection_init`; see `on_ws_connect`.
            return Context(services, user_id=None)
        try:
            user_id = await services.authenticator.user_from_authorization(
                request.headers.get("authorization")
            )
        except AuthError as error:
            raise FastAPIHTTPException(
                status_code=401, detail=str(error), headers={"WWW-Authenticate": "Bearer"}
            ) from None
        return Context(services, user_id=user_id)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        try:
            user_id = await connection_user(
                context.services.authenticator, context.connection_params
            )
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
