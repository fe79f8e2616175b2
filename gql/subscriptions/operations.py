"""Which websocket operations can share one execution, and under which key."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from functools import lru_cache

from graphql import (
    FieldNode,
    GraphQLError,
    NullValueNode,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    get_operation_ast,
    parse,
)

# Root fields whose results are each the current state of one thing: a subscriber
# joining a running execution is sent its latest result first, and a result equal
# to the one before it is not sent again.
REPLAYS_LATEST = frozenset({"exportJob"})
# Longer documents run on their own: the parse cache must stay small.
MAX_SHARED_QUERY_CHARS = 8192
# The argument that resumes a stream from a change cursor.
RESUME_ARGUMENT = "since"

_private_groups = itertools.count(1)


@dataclass(frozen=True)
class SharedOperation:
    """A subscription as a group key: same user, document, variables and name."""

    user_id: str
    query: str
    variables: str
    operation_name: str | None
    replays_latest: bool
    resume_from: str | None = None
    """An SSE client's `Last-Event-ID`: the cursor it resumes from."""
    private: bool = False
    """A resumed stream of several jobs replays what its own client missed: a
    subscriber joining it later would miss that replay, so it runs alone."""
    _instance: int = field(default=0, compare=False)

    @property
    def key(self) -> tuple[object, ...]:
        shared = (self.user_id, self.query, self.variables, self.operation_name, self.resume_from)
        return (*shared, self._instance) if self.private else shared


def shared_operation(
    user_id: str | None,
    query: object,
    variables: object,
    operation_name: object,
    *,
    resume_from: str | None = None,
) -> SharedOperation | None:
    """The operation's group, or None when it must run on its own.

    Queries, mutations and documents that do not parse or name a missing
    operation take the ordinary path, which reports their errors.
    """
    if user_id is None or not isinstance(query, str) or len(query) > MAX_SHARED_QUERY_CHARS:
        return None
    if operation_name is not None and not isinstance(operation_name, str):
        return None
    if variables is not None and not isinstance(variables, dict):
        return None
    root = _subscription_root(query, operation_name)
    if root is None:
        return None
    root_field, since = root
    # A `$since` left null starts a plain live stream, which may be shared.
    resumable = since if isinstance(since, bool) else (variables or {}).get(since) is not None
    try:
        canonical_variables = json.dumps(variables or {}, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return None
    replays_latest = root_field in REPLAYS_LATEST
    private = not replays_latest and (resumable or resume_from is not None)
    return SharedOperation(
        user_id=user_id,
        query=query,
        variables=canonical_variables,
        operation_name=operation_name,
        replays_latest=replays_latest,
        resume_from=resume_from,
        private=private,
        _instance=next(_private_groups) if private else 0,
    )


def is_subscription(query: object, operation_name: object) -> bool:
    """Whether the document's selected operation is a subscription."""
    if not isinstance(query, str) or len(query) > MAX_SHARED_QUERY_CHARS:
        return False
    if operation_name is not None and not isinstance(operation_name, str):
        return False
    return _subscription_root(query, operation_name) is not None


def is_mutation(query: object, operation_name: object) -> bool:
    """Whether the document's selected operation is a mutation."""
    if not isinstance(query, str) or len(query) > MAX_SHARED_QUERY_CHARS:
        return False
    if operation_name is not None and not isinstance(operation_name, str):
        return False
    operation = _operation(query, operation_name)
    return operation is not None and operation.operation == OperationType.MUTATION


@lru_cache(maxsize=512)
def _operation(query: str, operation_name: str | None) -> OperationDefinitionNode | None:
    try:
        return get_operation_ast(parse(query, no_location=True), operation_name)
    except GraphQLError:
        return None


@lru_cache(maxsize=512)
def _subscription_root(query: str, operation_name: str | None) -> tuple[str, bool | str] | None:
    """When `query` selects a subscription: its root field's name, and whether it
    passes `since` (to resume), or the variable that says; else None."""
    operation = _operation(query, operation_name)
    if operation is None or operation.operation != OperationType.SUBSCRIPTION:
        return None
    selections = operation.selection_set.selections
    if len(selections) != 1 or not isinstance(selections[0], FieldNode):
        return "", False  # invalid for a subscription; validation reports it
    field_node = selections[0]
    since = next(
        (arg.value for arg in field_node.arguments or () if arg.name.value == RESUME_ARGUMENT),
        None,
    )
    if isinstance(since, VariableNode):
        return field_node.name.value, since.name.value
    return field_node.name.value, since is not None and not isinstance(since, NullValueNode)
