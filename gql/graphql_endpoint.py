"""The GraphQL endpoint: HTTP, GraphiQL and both websocket subprotocols on `/graphql`.

Subscriptions are multiplexed: identical ones share one execution
(`gql.subscriptions`).

HTTP requests authenticate with their `Authorization` header. Websockets
authenticate in `connection_init` (Apollo's and urql's `connectionParams`):
`{"authorization": "Bearer <token>"}`, `{"Authorization": ...}`, `{"token": ...}` or
`{"headers": {"Authorization": ...}}`; a bad token closes the socket (4403).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import strawberry
from fastapi import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.types.unset import UnsetType

from gql.auth import AuthError
from gql.context import Context, Services
from gql.subscriptions.connections import UserConnections
from gql.subscriptions.handlers import LegacyWSHandler, TransportWSHandler
from gql.subscriptions.hub import SubscriptionHub
from gql.subscriptions.outbox import OutboxWebSocketAdapter


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


class GraphQLEndpoint(GraphQL[Context, None]):
    """A plain ASGI app, routed without FastAPI's dependency injection: every
    websocket holds on to what its request set up, so less is less per client."""

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
    ) -> None:
        self.hub = SubscriptionHub(schema)
        self.connections = UserConnections(max_connections_per_user)
        super().__init__(
            schema,
            graphql_ide="graphiql" if graphiql else None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
            connection_init_wait_timeout=connection_init_timeout,
        )

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        services: Services = request.app.state.services
        if isinstance(request, WebSocket):
            # Known after `connection_init`; see `on_ws_connect`.
            return Context(services, user_id=None)
        try:
            user_id = services.authenticator.user_from_authorization(
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
            user_id = authenticator.user_from_authorization(_authorization_from(params))
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


class WebSocketShortcut:
    """ASGI middleware handing `/graphql` websockets straight to the endpoint.

    A subscription's connection lives for hours, and every layer it passes
    through (exception handling, routing) keeps a coroutine frame alive for all
    that time: skipping them saves memory on every idle subscriber.
    """

    def __init__(self, app: ASGIApp, *, endpoint: GraphQLEndpoint, path: str) -> None:
        self._app = app
        self._endpoint = endpoint
        self._path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == self._path:
            await self._endpoint(scope, receive, send)
        else:
            await self._app(scope, receive, send)
