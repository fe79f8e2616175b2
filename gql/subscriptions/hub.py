"""Live-query multiplexing: one execution per distinct subscription, shared by its subscribers.

Subscribers of the same user sending the same document, variables and
operation name join one group. The group runs the subscription once, encodes
each result to JSON once, and hands the encoded payload to every member, which
only wraps it in its protocol's frame. A job's state identical to the one sent
before it is not sent again. Groups are per user, so a subscriber
only ever receives results computed with its own identity.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Protocol

from graphql import GraphQLError
from strawberry.schema import BaseSchema
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.utils.aio import aclosing

from gql.clock import utcnow
from gql.context import Context, Services
from gql.observability import metrics
from gql.subscriptions.operations import SharedOperation

logger = logging.getLogger(__name__)


class Subscriber(Protocol):
    """One subscription operation on one connection."""

    def deliver(self, payload: str, cursor: str | None = None) -> None:
        """Send a result; `payload` is the encoded `{"data": ..., "errors": ...}`,
        `cursor` the stream's change cursor once it is received (SSE's event id)."""

    def reject(self, errors: list[GraphQLError]) -> None:
        """The operation failed validation: send the errors; it is over."""

    def complete(self) -> None:
        """The stream ended: tell the client; it is over."""


class SubscriptionHub:
    def __init__(self, schema: BaseSchema) -> None:
        self._schema = schema
        self._groups: dict[tuple[object, ...], _Group] = {}
        self._group_of: dict[Subscriber, _Group] = {}

    @property
    def group_count(self) -> int:
        return len(self._groups)

    @property
    def subscriber_count(self) -> int:
        return len(self._group_of)

    def join(self, operation: SharedOperation, services: Services, subscriber: Subscriber) -> None:
        group = self._groups.get(operation.key)
        if group is None:
            group = _Group(self, operation, services)
            self._groups[operation.key] = group
            group.start()
        self._group_of[subscriber] = group
        group.add(subscriber)

    def leave(self, subscriber: Subscriber) -> None:
        group = self._group_of.pop(subscriber, None)
        if group is not None and group.remove(subscriber):
            self._forget(group)
            group.stop()

    def _forget(self, group: _Group) -> None:
        if self._groups.get(group.operation.key) is group:
            del self._groups[group.operation.key]

    def _ended(self, group: _Group) -> None:
        self._forget(group)
        for subscriber in group.members:
            self._group_of.pop(subscriber, None)


class _Group:
    def __init__(self, hub: SubscriptionHub, operation: SharedOperation, services: Services):
        self.hub = hub
        self.operation = operation
        self.members: dict[Subscriber, None] = {}
        self._context = Context(services, user_id=operation.user_id)
        self._context.resume_from = operation.resume_from
        self._latest: str | None = None
        self._latest_cursor: str | None = None
        # On a stream of several jobs (`exportJobs`), the last payload sent per job and
        # its cursor: a refresh equal to it is not news.
        self._sent_by_job: dict[str, tuple[str, str | None]] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="subscription-group")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def add(self, subscriber: Subscriber) -> None:
        self.members[subscriber] = None
        if self.operation.replays_latest and self._latest is not None:
            subscriber.deliver(self._latest, self._latest_cursor)

    def remove(self, subscriber: Subscriber) -> bool:
        """Returns True when the group has no members left."""
        self.members.pop(subscriber, None)
        return not self.members

    async def _run(self) -> None:
        ended_normally = False
        try:
            source = await self.hub._schema.subscribe(
                self.operation.query,
                variable_values=json.loads(self.operation.variables),
                context_value=self._context,
                operation_name=self.operation.operation_name,
            )
            async with aclosing(source):
                async for result in source:
                    if isinstance(result, PreExecutionError):
                        self._reject(result.errors or [])
                        return
                    self._broadcast(_encode(result))
            ended_normally = True
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("subscription group failed", extra={"action": "subscribe"})
        finally:
            self.hub._ended(self)
            members, self.members = list(self.members), {}
            if ended_normally or not self._cancelled():
                for subscriber in members:
                    subscriber.complete()

    def _cancelled(self) -> bool:
        task = asyncio.current_task()
        return task is not None and task.cancelling() > 0

    def _broadcast(self, payload: str) -> None:
        context = self._context
        job_id, refresh, final = context.result_job_id, context.refresh, context.result_final
        cursor = context.result_cursor
        context.result_job_id, context.refresh, context.result_final = None, False, False
        context.result_cursor = None
        if payload == self._latest and self.operation.replays_latest:
            # The state of one job, and none of the fields this operation selects
            # changed: a subscriber watching only `status` hears nothing of
            # progress. (On a stream of several jobs' changes, the same payload
            # twice is still news: another job changed.)
            context.change_written_at = None
            return
        if not self.operation.replays_latest and job_id is not None:
            if refresh and self._unchanged(job_id, payload, cursor):
                return  # its position or estimate moved, but not in what is selected
            if final:
                self._sent_by_job.pop(job_id, None)  # a final state is never refreshed
            else:
                self._sent_by_job[job_id] = (payload, cursor)
        self._latest, self._latest_cursor = payload, cursor
        for subscriber in list(self.members):
            subscriber.deliver(payload, cursor)
        written_at, self._context.change_written_at = self._context.change_written_at, None
        if written_at is not None:
            metrics.PUSH_LATENCY_SECONDS.observe((utcnow() - written_at).total_seconds())

    def _unchanged(self, job_id: str, payload: str, cursor: str | None) -> bool:
        """Whether a refresh shows the job as last sent. Its `changeCursor`, if selected,
        is the stream's, which other jobs' changes may have moved since: that alone is
        not news (a client resuming from its older cursor misses nothing)."""
        sent = self._sent_by_job.get(job_id)
        if sent is None:
            return False
        before, before_cursor = sent
        if before == payload:
            return True
        if cursor is None or before_cursor is None:
            return False
        return before.replace(json.dumps(before_cursor), json.dumps(cursor)) == payload

    def _reject(self, errors: list[GraphQLError]) -> None:
        self.hub._ended(self)
        members, self.members = list(self.members), {}
        for subscriber in members:
            subscriber.reject(errors)


def _encode(result: ExecutionResult) -> str:
    payload: dict[str, Any] = {"data": result.data}
    if result.errors:
        payload["errors"] = [error.formatted for error in result.errors]
    if result.extensions:
        payload["extensions"] = result.extensions
    return json.dumps(payload)
