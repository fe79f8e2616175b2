"""The root types, assembled from the resolvers, and the schema factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator

import strawberry
from graphql import GraphQLError
from strawberry.permission import BasePermission
from strawberry.types import ExecutionContext

from gql.context import Info
from gql.resolvers import mutations, queries, subscriptions
from gql.schema.errors import is_public
from gql.schema.inputs import ExportJobFilter
from gql.schema.limits import limit_extensions
from gql.schema.permissions import IsAuthenticated
from gql.schema.types import (
    CancelExportPayload,
    ExportJob,
    ExportJobConnection,
    Game,
    Project,
    StartExportPayload,
)

_authenticated: list[type[BasePermission]] = [IsAuthenticated]


@strawberry.type
class Query:
    export_job: ExportJob | None = strawberry.field(
        resolver=queries.export_job,
        permission_classes=_authenticated,
        description="One of the caller's jobs; null when there is no such job.",
    )
    export_jobs: ExportJobConnection = strawberry.field(
        resolver=queries.export_jobs,
        permission_classes=_authenticated,
        description="The caller's jobs, newest first. `first` is at most 100.",
    )
    projects: list[Project] = strawberry.field(
        resolver=queries.projects,
        permission_classes=_authenticated,
        description="The caller's projects, newest first (at most 100).",
    )
    games: list[Game] = strawberry.field(
        resolver=queries.games,
        permission_classes=_authenticated,
        description="The caller's games, newest first (at most 100).",
    )


@strawberry.type
class Mutation:
    start_overlay_export: StartExportPayload = strawberry.mutation(
        resolver=mutations.start_overlay_export, permission_classes=_authenticated
    )
    start_framing_export: StartExportPayload = strawberry.mutation(
        resolver=mutations.start_framing_export, permission_classes=_authenticated
    )
    start_annotate_export: StartExportPayload = strawberry.mutation(
        resolver=mutations.start_annotate_export, permission_classes=_authenticated
    )
    cancel_export: CancelExportPayload = strawberry.mutation(
        resolver=mutations.cancel_export, permission_classes=_authenticated
    )
    retry_export: StartExportPayload = strawberry.mutation(
        resolver=mutations.retry_export,
        permission_classes=_authenticated,
        description="A new job with the same input, for ERROR or CANCELLED jobs.",
    )


@strawberry.type
class Subscription:
    @strawberry.subscription(
        permission_classes=_authenticated,
        description=(
            "The current state at once, then each change to the selected fields;"
            " completes after a final state."
        ),
    )
    async def export_job(self, info: Info, id: strawberry.ID) -> AsyncGenerator[ExportJob, None]:
        async for job in subscriptions.export_job(info, id):
            yield job

    @strawberry.subscription(
        permission_classes=_authenticated,
        description="Every change to any of the caller's jobs.",
    )
    async def export_jobs(
        self, info: Info, filter: ExportJobFilter | None = None
    ) -> AsyncGenerator[ExportJob, None]:
        async for job in subscriptions.export_jobs(info, filter):
            yield job


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
