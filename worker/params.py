"""The job input, parsed from the camelCase JSON the API sends, and checked.

`parse_request` checks the shape (types, signs, counts) before anything is
downloaded; `check_against_video` checks times and rectangles once the input
video's size and duration are known. Both raise `InvalidParams` with a message
naming the offending field.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from worker.errors import InvalidParams

MAX_KEYFRAMES = 20_000
MAX_REGIONS = 1_000
MAX_CLIPS = 500
MAX_OUTPUT_SIDE = 7680
MIN_OUTPUT_SIDE = 16


class ExportKind(StrEnum):
    FRAMING = "framing"
    OVERLAY = "overlay"
    ANNOTATE = "annotate"


class Effect(StrEnum):
    BRIGHTNESS_BOOST = "BRIGHTNESS_BOOST"
    DARK_OVERLAY = "DARK_OVERLAY"
    ORIGINAL = "ORIGINAL"


@dataclass(frozen=True, kw_only=True)
class CropKeyframe:
    time: float
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True, kw_only=True)
class FramingParams:
    keyframes: tuple[CropKeyframe, ...]
    """Sorted by time."""
    output_width: int | None
    output_height: int | None


@dataclass(frozen=True, kw_only=True)
class EllipseKeyframe:
    time: float
    x: float
    y: float
    radius_x: float
    radius_y: float


@dataclass(frozen=True, kw_only=True)
class HighlightRegion:
    start_time: float
    end_time: float
    keyframes: tuple[EllipseKeyframe, ...]
    """Sorted by time; times are absolute (seconds into the video)."""


@dataclass(frozen=True, kw_only=True)
class OverlayParams:
    effect: Effect
    regions: tuple[HighlightRegion, ...]


@dataclass(frozen=True, kw_only=True)
class Clip:
    start_time: float
    end_time: float
    name: str
    notes: str | None
    rating: int | None


@dataclass(frozen=True, kw_only=True)
class AnnotateParams:
    clips: tuple[Clip, ...]
    """In output order."""


ExportParams = FramingParams | OverlayParams | AnnotateParams


@dataclass(frozen=True, kw_only=True)
class ExportRequest:
    job_id: str
    user_id: str
    kind: ExportKind
    input_key: str
    output_key: str
    poster_key: str | None
    """Where to write the poster frame; None: no poster (an API from before posters)."""
    params: ExportParams


def parse_request(job_input: object) -> ExportRequest:
    fields = _Fields(job_input, "input")
    kind_name = fields.text("type")
    try:
        kind = ExportKind(kind_name)
    except ValueError:
        expected = ", ".join(sorted(ExportKind))
        raise InvalidParams(
            f"unknown export type {kind_name!r}; expected one of {expected}"
        ) from None
    raw_params = _Fields(fields.value("params"), "params")
    parsers: dict[ExportKind, Callable[[_Fields], ExportParams]] = {
        ExportKind.FRAMING: _parse_framing,
        ExportKind.OVERLAY: _parse_overlay,
        ExportKind.ANNOTATE: _parse_annotate,
    }
    return ExportRequest(
        job_id=fields.text("job_id"),
        user_id=fields.text("user_id"),
        kind=kind,
        input_key=fields.text("input_key"),
        output_key=fields.text("output_key"),
        poster_key=fields.optional_text("poster_key") or None,
        params=parsers[kind](raw_params),
    )


def check_against_video(
    params: ExportParams, *, width: int, height: int, duration_s: float, fps: float
) -> None:
    """Times must lie inside the video (half a frame of slack), crops inside the frame."""
    limit = duration_s + 0.5 / fps

    def check_time(value: float, where: str) -> None:
        if value > limit:
            raise InvalidParams(
                f"{where} is {value:g}s, after the end of the video ({duration_s:.3f}s)"
            )

    if isinstance(params, FramingParams):
        for index, crop in enumerate(params.keyframes):
            where = f"cropKeyframes[{index}]"
            check_time(crop.time, f"{where}.time")
            inside_x = crop.x < width and crop.x + crop.width > 0
            inside_y = crop.y < height and crop.y + crop.height > 0
            if not (inside_x and inside_y):
                raise InvalidParams(f"{where} lies outside the {width}x{height} frame")
    elif isinstance(params, OverlayParams):
        for index, region in enumerate(params.regions):
            check_time(region.start_time, f"highlightRegions[{index}].startTime")
            for k, key in enumerate(region.keyframes):
                check_time(key.time, f"highlightRegions[{index}].keyframes[{k}].time")
    else:
        for index, clip in enumerate(params.clips):
            check_time(clip.start_time, f"clips[{index}].startTime")
            check_time(clip.end_time, f"clips[{index}].endTime")
            if clip.end_time - clip.start_time < 0.5 / fps:
                raise InvalidParams(f"clips[{index}] is shorter than one frame")


def _parse_framing(fields: _Fields) -> FramingParams:
    keyframes = []
    for index, item in enumerate(fields.items("cropKeyframes", MAX_KEYFRAMES)):
        key = _Fields(item, f"cropKeyframes[{index}]")
        keyframes.append(
            CropKeyframe(
                time=key.number("time", minimum=0.0),
                x=key.number("x"),
                y=key.number("y"),
                width=key.number("width", positive=True),
                height=key.number("height", positive=True),
            )
        )
    return FramingParams(
        keyframes=tuple(sorted(keyframes, key=lambda k: k.time)),
        output_width=fields.output_side("outputWidth"),
        output_height=fields.output_side("outputHeight"),
    )


def _parse_overlay(fields: _Fields) -> OverlayParams:
    effect_name = fields.text("effectType")
    try:
        effect = Effect(effect_name)
    except ValueError:
        expected = ", ".join(Effect)
        raise InvalidParams(
            f"unknown effectType {effect_name!r}; expected one of {expected}"
        ) from None
    regions = []
    for index, item in enumerate(fields.items("highlightRegions", MAX_REGIONS, allow_empty=True)):
        where = f"highlightRegions[{index}]"
        region = _Fields(item, where)
        start = region.number("startTime", minimum=0.0)
        end = region.number("endTime", minimum=0.0)
        if end < start:
            raise InvalidParams(f"{where}.endTime is before its startTime")
        keyframes = []
        for k, raw in enumerate(region.items("keyframes", MAX_KEYFRAMES)):
            key = _Fields(raw, f"{where}.keyframes[{k}]")
            keyframes.append(
                EllipseKeyframe(
                    time=key.number("time", minimum=0.0),
                    x=key.number("x"),
                    y=key.number("y"),
                    radius_x=key.number("radiusX", positive=True),
                    radius_y=key.number("radiusY", positive=True),
                )
            )
        regions.append(
            HighlightRegion(
                start_time=start,
                end_time=end,
                keyframes=tuple(sorted(keyframes, key=lambda k: k.time)),
            )
        )
    return OverlayParams(effect=effect, regions=tuple(regions))


def _parse_annotate(fields: _Fields) -> AnnotateParams:
    clips = []
    for index, item in enumerate(fields.items("clips", MAX_CLIPS)):
        where = f"clips[{index}]"
        clip = _Fields(item, where)
        start = clip.number("startTime", minimum=0.0)
        end = clip.number("endTime", minimum=0.0)
        if end <= start:
            raise InvalidParams(f"{where}.endTime must be after its startTime")
        rating = clip.optional_integer("rating")
        if rating is not None and not 1 <= rating <= 5:
            raise InvalidParams(f"{where}.rating must be between 1 and 5")
        clips.append(
            Clip(
                start_time=start,
                end_time=end,
                name=clip.text("name", allow_empty=True),
                notes=clip.optional_text("notes"),
                rating=rating,
            )
        )
    return AnnotateParams(clips=tuple(clips))


class _Fields:
    """Typed reads from one JSON object; errors name the field's path."""

    def __init__(self, raw: object, where: str) -> None:
        if not isinstance(raw, Mapping):
            raise InvalidParams(f"{where} must be an object")
        self._raw: Mapping[str, Any] = raw
        self._where = where

    def value(self, key: str) -> Any:
        if key not in self._raw:
            raise InvalidParams(f"{self._where}.{key} is missing")
        return self._raw[key]

    def text(self, key: str, *, allow_empty: bool = False) -> str:
        value = self.value(key)
        if not isinstance(value, str) or (not allow_empty and not value.strip()):
            raise InvalidParams(f"{self._where}.{key} must be a non-empty string")
        return value

    def optional_text(self, key: str) -> str | None:
        value = self._raw.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise InvalidParams(f"{self._where}.{key} must be a string")
        return value

    def number(self, key: str, *, minimum: float | None = None, positive: bool = False) -> float:
        value = self.value(key)
        if not _is_number(value) or not math.isfinite(value):
            raise InvalidParams(f"{self._where}.{key} must be a number")
        if positive and value <= 0:
            raise InvalidParams(f"{self._where}.{key} must be positive (empty area)")
        if minimum is not None and value < minimum:
            raise InvalidParams(f"{self._where}.{key} must be at least {minimum:g}")
        return float(value)

    def optional_integer(self, key: str) -> int | None:
        value = self._raw.get(key)
        if value is None:
            return None
        if not _is_number(value) or not math.isfinite(value) or value != int(value):
            raise InvalidParams(f"{self._where}.{key} must be an integer")
        return int(value)

    def output_side(self, key: str) -> int | None:
        """Optional output size; odd values are rounded down (H.264 4:2:0 needs even sides)."""
        value = self.optional_integer(key)
        if value is None:
            return None
        if not MIN_OUTPUT_SIDE <= value <= MAX_OUTPUT_SIDE:
            raise InvalidParams(
                f"{self._where}.{key} must be between {MIN_OUTPUT_SIDE} and {MAX_OUTPUT_SIDE}"
            )
        return value & ~1

    def items(self, key: str, limit: int, *, allow_empty: bool = False) -> Sequence[Any]:
        value = self.value(key)
        if not isinstance(value, list):
            raise InvalidParams(f"{self._where}.{key} must be a list")
        if not value and not allow_empty:
            raise InvalidParams(f"{self._where}.{key} must not be empty")
        if len(value) > limit:
            raise InvalidParams(f"{self._where}.{key} has more than {limit} items")
        return value


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
