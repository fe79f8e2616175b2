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
from starlette.requests import HTTPConnection
from strawberry.exceptions import ConnectionRejectionError
from strawberry.fastapi import GraphQLRouter
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.types.unset import UnsetType

from gql.auth import AuthError
from gql.context import Context, Services
from gql.subscriptions.handlers import LegacyWSHandler, TransportWSHandler
from gql.subscriptions.hub import SubscriptionHub
from gql.subscriptions.outbox import OutboxWebSocketAdapter


async def get_context(connection: HTTPConnection) -> Context:
    services: Services = connection.app.state.services
    if connection.scope["type"] == "websocket":
        # Known after `connection_init`; see `on_ws_connect`.
        return Context(services, user_id=None)
    try:
        user_id = services.authenticator.user_from_authorization(
            connection.headers.get("authorization")
        )
    except AuthError as error:
        raise HTTPException(
            status_code=401, detail=str(error), headers={"WWW-Authenticate": "Bearer"}
        ) from None
    return Context(services, user_id=user_id)


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


class ExportGraphQLRouter(GraphQLRouter[Context, None]):
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler
    websocket_adapter_class = OutboxWebSocketAdapter

    def __init__(
        self,
        schema: strawberry.Schema,
        *,
        graphiql: bool = True,
        connection_init_timeout: timedelta = timedelta(seconds=10),
    ) -> None:
        self.hub = SubscriptionHub(schema)
        super().__init__(
            schema,
            context_getter=get_context,
            graphql_ide="graphiql" if graphiql else None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
            connection_init_wait_timeout=connection_init_timeout,
        )

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        params = context.connection_params if isinstance(context.connection_params, Mapping) else {}
        authenticator = context.services.authenticator
        try:
            user_id = authenticator.user_from_authorization(_authorization_from(params))
        except AuthError:
            raise ConnectionRejectionError() from None
        if user_id is None:
            raise ConnectionRejectionError()
        context.user_id = user_id
        return await super().on_ws_connect(context)
