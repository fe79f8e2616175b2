"""Input types. Each start input turns itself into the domain's `ExportRequest`;
the params keep the GraphQL (camelCase) names because the worker reads them so."""

from __future__ import annotations

from typing import Any

import strawberry

from gql.jobs.models import ExportKind, ExportStatus
from gql.jobs.repository import JobFilter
from gql.jobs.requests import ExportRequest
from gql.schema.enums import HighlightEffect

IDEMPOTENCY_KEY_HELP = "Send the same key again to get the same job back instead of a new one."


@strawberry.input
class HighlightKeyframeInput:
    time: float = strawberry.field(description="Seconds from the start of the video.")
    x: float
    y: float
    radius_x: float
    radius_y: float

    def to_params(self) -> dict[str, float]:
        return {
            "time": float(self.time),
            "x": float(self.x),
            "y": float(self.y),
            "radiusX": float(self.radius_x),
            "radiusY": float(self.radius_y),
        }


@strawberry.input
class HighlightRegionInput:
    start_time: float
    end_time: float
    keyframes: list[HighlightKeyframeInput]

    def to_params(self) -> dict[str, Any]:
        return {
            "startTime": float(self.start_time),
            "endTime": float(self.end_time),
            "keyframes": [keyframe.to_params() for keyframe in self.keyframes],
        }


@strawberry.input(description="Highlight effects drawn on the project's newest working video.")
class OverlayExportInput:
    project_id: int
    effect_type: HighlightEffect
    highlight_regions: list[HighlightRegionInput]
    idempotency_key: str | None = strawberry.field(default=None, description=IDEMPOTENCY_KEY_HELP)

    def to_request(self) -> ExportRequest:
        return ExportRequest(
            kind=ExportKind.OVERLAY,
            project_id=self.project_id,
            game_id=None,
            params={
                "effectType": self.effect_type.value,
                "highlightRegions": [region.to_params() for region in self.highlight_regions],
            },
            idempotency_key=self.idempotency_key,
        )


@strawberry.input
class CropKeyframeInput:
    time: float = strawberry.field(description="Seconds from the start of the clip.")
    x: float = strawberry.field(description="Left edge of the crop, in source pixels.")
    y: float = strawberry.field(description="Top edge of the crop, in source pixels.")
    width: float
    height: float

    def to_params(self) -> dict[str, float]:
        return {
            "time": float(self.time),
            "x": float(self.x),
            "y": float(self.y),
            "width": float(self.width),
            "height": float(self.height),
        }


@strawberry.input(description="Crop and zoom the project's source clip into a working video.")
class FramingExportInput:
    project_id: int
    crop_keyframes: list[CropKeyframeInput]
    output_width: int | None = strawberry.field(
        default=None, description="Defaults to the first keyframe's crop width (made even)."
    )
    output_height: int | None = None
    idempotency_key: str | None = strawberry.field(default=None, description=IDEMPOTENCY_KEY_HELP)

    def to_request(self) -> ExportRequest:
        return ExportRequest(
            kind=ExportKind.FRAMING,
            project_id=self.project_id,
            game_id=None,
            params={
                "cropKeyframes": [keyframe.to_params() for keyframe in self.crop_keyframes],
                "outputWidth": self.output_width,
                "outputHeight": self.output_height,
            },
            idempotency_key=self.idempotency_key,
        )


@strawberry.input
class AnnotatedClipInput:
    start_time: float
    end_time: float
    name: str
    notes: str | None = None
    rating: int | None = strawberry.field(default=None, description="1 to 5 stars.")

    def to_params(self) -> dict[str, Any]:
        return {
            "startTime": float(self.start_time),
            "endTime": float(self.end_time),
            "name": self.name,
            "notes": self.notes,
            "rating": self.rating,
        }


@strawberry.input(description="Clips of the game video with names and notes, compiled in order.")
class AnnotateExportInput:
    game_id: int
    clips: list[AnnotatedClipInput]
    idempotency_key: str | None = strawberry.field(default=None, description=IDEMPOTENCY_KEY_HELP)

    def to_request(self) -> ExportRequest:
        return ExportRequest(
            kind=ExportKind.ANNOTATE,
            project_id=None,
            game_id=self.game_id,
            params={"clips": [clip.to_params() for clip in self.clips]},
            idempotency_key=self.idempotency_key,
        )


@strawberry.input(description="Every given condition must hold; lists match any of their items.")
class ExportJobFilter:
    status: list[ExportStatus] | None = None
    kind: list[ExportKind] | None = None
    project_id: int | None = None
    game_id: int | None = None

    def to_filter(self) -> JobFilter:
        return JobFilter(
            statuses=frozenset(ExportStatus(s) for s in self.status)
            if self.status is not None
            else None,
            kinds=frozenset(ExportKind(k) for k in self.kind) if self.kind is not None else None,
            project_id=self.project_id,
            game_id=self.game_id,
        )


def job_filter(value: ExportJobFilter | None) -> JobFilter:
    return value.to_filter() if value is not None else JobFilter()
