"""GraphQL enums. Status and kind are the domain's own enums, exposed by member name."""

from __future__ import annotations

from enum import Enum

import strawberry

from gql.jobs.eta import EtaBasis
from gql.jobs.models import ExportKind, ExportStatus

ExportKindEnum = strawberry.enum(ExportKind, description="What an export produces.")
ExportStatusEnum = strawberry.enum(
    ExportStatus,
    description="Where a job is. COMPLETE, ERROR and CANCELLED are final.",
)
EtaBasisEnum = strawberry.enum(EtaBasis, description="What an estimate rests on.")


@strawberry.enum(description="How an overlay export marks each highlighted region.")
class HighlightEffect(Enum):
    BRIGHTNESS_BOOST = "BRIGHTNESS_BOOST"
    DARK_OVERLAY = "DARK_OVERLAY"
    ORIGINAL = "ORIGINAL"
