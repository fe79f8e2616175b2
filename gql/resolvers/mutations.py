"""The root `Mutation` type and its resolvers."""

from __future__ import annotations

import strawberry

from gql.context import Info, current_user
from gql.jobs.errors import ExportError
from gql.jobs.requests import ExportRequest
from gql.schema.errors import user_errors
from gql.schema.inputs import AnnotateExportInput, FramingExportInput, OverlayExportInput
from gql.schema.permissions import AUTHENTICATED
from gql.schema.types import CancelExportPayload, ExportJob, StartExportPayload


async def _start(info: Info, request: ExportRequest) -> StartExportPayload:
    try:
        job = await info.context.services.jobs.start(current_user(info), request)
    except ExportError as error:
        return StartExportPayload(job=None, user_errors=user_errors(error))
    return StartExportPayload(job=ExportJob.of(job), user_errors=[])


async def start_overlay_export(info: Info, input: OverlayExportInput) -> StartExportPayload:
    return await _start(info, input.to_request())


async def start_framing_export(info: Info, input: FramingExportInput) -> StartExportPayload:
    return await _start(info, input.to_request())


async def start_annotate_export(info: Info, input: AnnotateExportInput) -> StartExportPayload:
    return await _start(info, input.to_request())


async def cancel_export(info: Info, id: strawberry.ID) -> CancelExportPayload:
    try:
        job = await info.context.services.jobs.cancel(current_user(info), str(id))
    except ExportError as error:
        return CancelExportPayload(job=None, user_errors=user_errors(error))
    return CancelExportPayload(job=ExportJob.of(job), user_errors=[])


async def retry_export(info: Info, id: strawberry.ID) -> StartExportPayload:
    try:
        job = await info.context.services.jobs.retry(current_user(info), str(id))
    except ExportError as error:
        return StartExportPayload(job=None, user_errors=user_errors(error))
    return StartExportPayload(job=ExportJob.of(job), user_errors=[])


@strawberry.type
class Mutation:
    start_overlay_export: StartExportPayload = strawberry.mutation(
        resolver=start_overlay_export, permission_classes=AUTHENTICATED
    )
    start_framing_export: StartExportPayload = strawberry.mutation(
        resolver=start_framing_export, permission_classes=AUTHENTICATED
    )
    start_annotate_export: StartExportPayload = strawberry.mutation(
        resolver=start_annotate_export, permission_classes=AUTHENTICATED
    )
    cancel_export: CancelExportPayload = strawberry.mutation(
        resolver=cancel_export, permission_classes=AUTHENTICATED
    )
    retry_export: StartExportPayload = strawberry.mutation(
        resolver=retry_export,
        permission_classes=AUTHENTICATED,
        description="A new job with the same input, for ERROR or CANCELLED jobs.",
    )
