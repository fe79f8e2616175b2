"""Strawberry's websocket protocol handlers, with subscriptions served by the hub.

Protocol rules (connection_init, 4401/4409 closes, ping, stop/complete, the
subscription limit) stay Strawberry's; only a subscription's execution moves to
`SubscriptionHub`, and frames are built around its shared, pre-encoded payload.
Queries and mutations sent over a websocket take Strawberry's own path.
"""

from __future__ import annotations

import json
from typing import Any, Protocol, cast

from graphql import GraphQLError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    CompleteMessage,
    ConnectionInitMessage,
    SubscribeMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ConnectionInitMessage as LegacyConnectionInitMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ErrorMessage,
    StartMessage,
    StopMessage,
)

from gql.context import Context
from gql.subscriptions.connections import ConnectionLimitReached
from gql.subscriptions.hub import SubscriptionHub
from gql.subscriptions.operations import SharedOperation, shared_operation
from gql.subscriptions.outbox import OutboxWebSocketAdapter


class HubView(Protocol):
    hub: SubscriptionHub

    def release_connection(self, context: Context) -> None: ...


TOO_MANY_CONNECTIONS = 4429


def _shareable(context: Context, payload: object) -> SharedOperation | None:
    if not isinstance(payload, dict):
        return None
    return shared_operation(
        context.user_id,
        payload.get("query"),
        payload.get("variables"),
        payload.get("operationName"),
    )


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """`graphql-transport-ws`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shared: dict[str, _TransportSubscriber] = {}
        self.outbox = cast(OutboxWebSocketAdapter, self.websocket)
        self.outbox.on_abandon = self._leave_all
        self.hub_view = cast(HubView, self.view)
        self.hub = self.hub_view.hub

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        try:
            await super().handle_connection_init(message)
        except ConnectionLimitReached as refusal:
            await self.websocket.close(code=TOO_MANY_CONNECTIONS, reason=str(refusal))

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        op_id, payload = message["id"], message["payload"]
        operation = _shareable(self.context, payload) if self.connection_acknowledged else None
        if operation is None:
            if op_id in self.shared:
                await self.websocket.close(4409, f"Subscriber for {op_id} already exists")
                return
            await super().handle_subscribe(message)
            return
        if op_id in self.operations or op_id in self.shared:
            await self.websocket.close(4409, f"Subscriber for {op_id} already exists")
            return
        limit = self.max_subscriptions_per_connection
        if limit is not None and len(self.operations) + len(self.shared) >= limit:
            error = GraphQLError("Subscription limit reached")
            await self.send_message({"id": op_id, "type": "error", "payload": [error.formatted]})
            return
        subscriber = _TransportSubscriber(self, op_id)
        self.shared[op_id] = subscriber
        self.hub.join(operation, self.context.services, subscriber)

    async def handle_complete(self, message: CompleteMessage) -> None:
        subscriber = self.shared.pop(message["id"], None)
        if subscriber is not None:
            self.hub.leave(subscriber)
            return
        await super().handle_complete(message)

    async def shutdown(self) -> None:
        self._leave_all()
        self.hub_view.release_connection(self.context)
        await super().shutdown()

    def _leave_all(self) -> None:
        for subscriber in self.shared.values():
            self.hub.leave(subscriber)
        self.shared.clear()


class _TransportSubscriber:
    __slots__ = ("_handler", "_id", "_next_prefix")

    def __init__(self, handler: TransportWSHandler, op_id: str) -> None:
        self._handler = handler
        self._id = op_id
        self._next_prefix = f'{{"id":{json.dumps(op_id)},"type":"next","payload":'

    def deliver(self, payload: str, cursor: str | None = None) -> None:
        self._handler.outbox.send_frame(f"{self._next_prefix}{payload}}}")

    def reject(self, errors: list[GraphQLError]) -> None:
        if self._handler.shared.pop(self._id, None) is self:
            message = {"id": self._id, "type": "error", "payload": [e.formatted for e in errors]}
            self._handler.outbox.send_frame(json.dumps(message))

    def complete(self) -> None:
        if self._handler.shared.pop(self._id, None) is self:
            self._handler.outbox.send_frame(json.dumps({"id": self._id, "type": "complete"}))


class LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    """The legacy `graphql-ws` protocol (subscriptions-transport-ws)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shared: dict[str, _LegacySubscriber] = {}
        self.outbox = cast(OutboxWebSocketAdapter, self.websocket)
        self.outbox.on_abandon = self._leave_all
        self.hub_view = cast(HubView, self.view)
        self.hub = self.hub_view.hub

    async def handle_connection_init(self, message: LegacyConnectionInitMessage) -> None:
        try:
            await super().handle_connection_init(message)
        except ConnectionLimitReached as refusal:
            await self.websocket.close(code=TOO_MANY_CONNECTIONS, reason=str(refusal))

    async def handle_start(self, message: StartMessage) -> None:
        op_id, payload = message["id"], message["payload"]
        operation = _shareable(self.context, payload) if self.connection_acknowledged else None
        # The protocol lets a start reuse an id: it replaces that operation.
        self._leave(op_id)
        if operation is None:
            await super().handle_start(message)
            return
        await self.cleanup_operation(op_id)
        limit = self.max_subscriptions_per_connection
        if limit is not None and len(self.tasks) + len(self.shared) >= limit:
            error = GraphQLError("Subscription limit reached").formatted
            await self.send_message(ErrorMessage(type="error", id=op_id, payload=error))
            return
        subscriber = _LegacySubscriber(self, op_id)
        self.shared[op_id] = subscriber
        self.hub.join(operation, self.context.services, subscriber)

    async def handle_stop(self, message: StopMessage) -> None:
        subscriber = self.shared.get(message["id"])
        if subscriber is not None:
            self._leave(message["id"])
            subscriber.complete_stopped()
            return
        await super().handle_stop(message)

    async def cleanup(self) -> None:
        self._leave_all()
        self.hub_view.release_connection(self.context)
        await super().cleanup()

    def _leave_all(self) -> None:
        for op_id in list(self.shared):
            self._leave(op_id)

    def _leave(self, op_id: str) -> None:
        subscriber = self.shared.pop(op_id, None)
        if subscriber is not None:
            self.hub.leave(subscriber)


class _LegacySubscriber:
    __slots__ = ("_data_prefix", "_handler", "_id")

    def __init__(self, handler: LegacyWSHandler, op_id: str) -> None:
        self._handler = handler
        self._id = op_id
        self._data_prefix = f'{{"type":"data","id":{json.dumps(op_id)},"payload":'

    def deliver(self, payload: str, cursor: str | None = None) -> None:
        self._handler.outbox.send_frame(f"{self._data_prefix}{payload}}}")

    def reject(self, errors: list[GraphQLError]) -> None:
        if self._handler.shared.pop(self._id, None) is self:
            message = {"type": "error", "id": self._id, "payload": errors[0].formatted}
            self._handler.outbox.send_frame(json.dumps(message))

    def complete(self) -> None:
        if self._handler.shared.pop(self._id, None) is self:
            self.complete_stopped()

    def complete_stopped(self) -> None:
        self._handler.outbox.send_frame(json.dumps({"type": "complete", "id": self._id}))
