"""Errors a client may see. Anything else is masked as "Unexpected error." (see limits)."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError

from gql.jobs.errors import ExportError


@strawberry.type(description="A problem with the request the caller can fix; `code` is stable.")
class UserError:
    field: list[str] | None = strawberry.field(
        description='Path to the argument at fault, e.g. ["input", "clips", "0", "endTime"].'
    )
    message: str
    code: str = strawberry.field(
        description="Stable machine-readable code, e.g. PROJECT_NOT_FOUND or OUT_OF_RANGE."
    )
    retry_after_seconds: int | None = strawberry.field(
        default=None, description="For RATE_LIMITED: when the request would be accepted."
    )


def user_errors(error: ExportError) -> list[UserError]:
    return [
        UserError(
            field=list(item.field) if item.field is not None else None,
            message=item.message,
            code=item.code.value,
            retry_after_seconds=item.retry_after_s,
        )
        for item in error.errors
    ]


class PublicError(GraphQLError):
    """An error whose message and code are meant for the client."""

    def __init__(self, message: str, code: str, **extensions: Any) -> None:
        super().__init__(message, extensions={"code": code, **extensions})


def is_public(error: GraphQLError) -> bool:
    """GraphQL errors raised on purpose (validation, permissions, PublicError) pass;
    any other exception is a bug whose text may hold internals, so it is masked."""
    original = error.original_error
    return original is None or isinstance(original, GraphQLError)
