"""The schema: the root types of `gql.resolvers`, with the limits of `gql.schema`."""

from __future__ import annotations

import logging

import strawberry
from graphql import GraphQLError
from strawberry.types import ExecutionContext

from gql.resolvers.mutations import Mutation
from gql.resolvers.queries import Query
from gql.resolvers.subscriptions import Subscription
from gql.schema.errors import is_public
from gql.schema.limits import limit_extensions


class ExportSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """The client's mistakes (validation, permissions, public errors) are one INFO
        line each; anything else is a fault, logged at ERROR with its traceback."""
        for error in errors:
            if is_public(error):
                code = (error.extensions or {}).get("code")
                _client_errors.info(error.message, extra={"action": "client_error", "code": code})
            else:
                super().process_errors([error], execution_context)


_client_errors = logging.getLogger("gql.client_errors")


def build_schema(
    *, max_depth: int = 10, max_aliases: int = 15, max_tokens: int = 2000
) -> strawberry.Schema:
    return ExportSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=limit_extensions(
            max_depth=max_depth, max_aliases=max_aliases, max_tokens=max_tokens
        ),
    )
