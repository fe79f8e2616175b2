"""The root `Query` type and its resolvers."""

from __future__ import annotations

import strawberry

from gql.context import Info, current_user
from gql.jobs.errors import ExportError
from gql.schema.errors import PublicError
from gql.schema.inputs import ExportJobFilter, job_filter
from gql.schema.permissions import AUTHENTICATED
from gql.schema.types import ExportJob, ExportJobConnection, Game, Project

DEFAULT_PAGE_SIZE = 20
MAX_ASSETS = 100


async def export_job(info: Info, id: strawberry.ID) -> ExportJob | None:
    job = await info.context.services.jobs.get(current_user(info), str(id))
    return ExportJob.of(job) if job is not None else None


async def export_jobs(
    info: Info,
    first: int | None = DEFAULT_PAGE_SIZE,
    after: str | None = None,
    filter: ExportJobFilter | None = None,
) -> ExportJobConnection:
    try:
        page = await info.context.services.jobs.list(
            current_user(info),
            job_filter(filter),
            first=DEFAULT_PAGE_SIZE if first is None else first,
            after=after,
        )
    except ExportError as error:
        (problem,) = error.errors
        raise PublicError(problem.message, problem.code.value, field=problem.field) from None
    return ExportJobConnection.of(page.jobs, has_next_page=page.has_next_page, after=after)


async def projects(info: Info) -> list[Project]:
    found = await info.context.services.assets.projects_for_user(
        current_user(info), limit=MAX_ASSETS
    )
    return [Project(id=project.id, name=project.name) for project in found]


async def games(info: Info) -> list[Game]:
    found = await info.context.services.assets.games_for_user(current_user(info), limit=MAX_ASSETS)
    return [Game(id=game.id, name=game.name) for game in found]


@strawberry.type
class Query:
    export_job: ExportJob | None = strawberry.field(
        resolver=export_job,
        permission_classes=AUTHENTICATED,
        description="One of the caller's jobs; null when there is no such job.",
    )
    export_jobs: ExportJobConnection = strawberry.field(
        resolver=export_jobs,
        permission_classes=AUTHENTICATED,
        description="The caller's jobs, newest first. `first` is at most 100.",
    )
    projects: list[Project] = strawberry.field(
        resolver=projects,
        permission_classes=AUTHENTICATED,
        description="The caller's projects, newest first (at most 100).",
    )
    games: list[Game] = strawberry.field(
        resolver=games,
        permission_classes=AUTHENTICATED,
        description="The caller's games, newest first (at most 100).",
    )
