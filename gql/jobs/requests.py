"""What a start request must satisfy before a job is recorded.

Checks here need nothing but the request itself. Whether times fit inside the
video is known only to the worker, which fails the job with a clear error.
Field paths are the GraphQL argument paths, e.g. ("input", "clips", "2", "endTime").
"""

from __future__ import annotations

import math
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gql.jobs.errors import ErrorCode, ExportError, FieldError
from gql.jobs.models import ExportKind

MAX_SECONDS = 6 * 3600.0
MAX_COORDINATE = 16384.0
MAX_OUTPUT_SIDE = 4096
MIN_OUTPUT_SIDE = 16
MAX_REGIONS = 50
MAX_KEYFRAMES = 1000
MAX_CLIPS = 200
MAX_NAME = 200
MAX_NOTES = 2000
MAX_IDEMPOTENCY_KEY = 200

Path = tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class ExportRequest:
    """A validated start request; `params` go to the worker as they are."""

    kind: ExportKind
    project_id: int | None
    game_id: int | None
    params: Mapping[str, Any]
    idempotency_key: str | None


def input_seconds(request: ExportRequest, input_duration_s: float | None) -> float | None:
    """Seconds of video the export processes: its clips' total (annotate), or its
    input's whole length (framing and overlay render all of it); None when unknown."""
    if request.kind is ExportKind.ANNOTATE:
        return sum(float(c["endTime"]) - float(c["startTime"]) for c in request.params["clips"])
    return input_duration_s


def validated(request: ExportRequest) -> ExportRequest:
    """Return the request unchanged, or raise ExportError listing every problem."""
    checks = {
        ExportKind.OVERLAY: _overlay_errors,
        ExportKind.FRAMING: _framing_errors,
        ExportKind.ANNOTATE: _annotate_errors,
    }[request.kind]
    errors = [*_idempotency_errors(request.idempotency_key), *checks(request.params)]
    if errors:
        raise ExportError(*errors)
    return request


def _idempotency_errors(key: str | None) -> Iterator[FieldError]:
    path = ("input", "idempotencyKey")
    if key is None:
        return
    if not key.strip() or not key.isprintable():
        yield FieldError(ErrorCode.INVALID, "The idempotency key must be printable text.", path)
    elif len(key) > MAX_IDEMPOTENCY_KEY:
        yield FieldError(ErrorCode.TOO_LONG, f"Use at most {MAX_IDEMPOTENCY_KEY} characters.", path)


def _overlay_errors(params: Mapping[str, Any]) -> Iterator[FieldError]:
    regions = params["highlightRegions"]
    yield from _count_errors(regions, ("input", "highlightRegions"), MAX_REGIONS, "region")
    for index, region in enumerate(regions[:MAX_REGIONS]):
        path = ("input", "highlightRegions", str(index))
        yield from _time_range_errors(region, path)
        keyframes = region["keyframes"]
        yield from _count_errors(keyframes, (*path, "keyframes"), MAX_KEYFRAMES, "keyframe")
        yield from _keyframe_errors(keyframes, (*path, "keyframes"), ("radiusX", "radiusY"))
        for kf_index, keyframe in enumerate(keyframes):
            if not region["startTime"] <= keyframe["time"] <= region["endTime"]:
                yield FieldError(
                    ErrorCode.OUT_OF_RANGE,
                    "A keyframe's time must lie inside its region.",
                    (*path, "keyframes", str(kf_index), "time"),
                )


def _framing_errors(params: Mapping[str, Any]) -> Iterator[FieldError]:
    keyframes = params["cropKeyframes"]
    path = ("input", "cropKeyframes")
    yield from _count_errors(keyframes, path, MAX_KEYFRAMES, "crop keyframe")
    yield from _keyframe_errors(keyframes, path, ("width", "height"))
    width, height = params.get("outputWidth"), params.get("outputHeight")
    if (width is None) != (height is None):
        missing = "outputHeight" if height is None else "outputWidth"
        yield FieldError(
            ErrorCode.REQUIRED,
            "Give both outputWidth and outputHeight, or neither.",
            ("input", missing),
        )
    for name, side in (("outputWidth", width), ("outputHeight", height)):
        if side is None:
            continue
        if not MIN_OUTPUT_SIDE <= side <= MAX_OUTPUT_SIDE:
            yield FieldError(
                ErrorCode.OUT_OF_RANGE,
                f"Must be between {MIN_OUTPUT_SIDE} and {MAX_OUTPUT_SIDE} pixels.",
                ("input", name),
            )
        elif side % 2:
            yield FieldError(
                ErrorCode.INVALID, "Must be even (H.264 needs even sizes).", ("input", name)
            )


def _annotate_errors(params: Mapping[str, Any]) -> Iterator[FieldError]:
    clips = params["clips"]
    yield from _count_errors(clips, ("input", "clips"), MAX_CLIPS, "clip")
    for index, clip in enumerate(clips[:MAX_CLIPS]):
        path = ("input", "clips", str(index))
        yield from _time_range_errors(clip, path)
        name = clip["name"]
        if not name.strip():
            yield FieldError(ErrorCode.REQUIRED, "A clip needs a name.", (*path, "name"))
        elif len(name) > MAX_NAME:
            yield FieldError(
                ErrorCode.TOO_LONG, f"Use at most {MAX_NAME} characters.", (*path, "name")
            )
        notes = clip.get("notes")
        if notes is not None and len(notes) > MAX_NOTES:
            yield FieldError(
                ErrorCode.TOO_LONG, f"Use at most {MAX_NOTES} characters.", (*path, "notes")
            )
        rating = clip.get("rating")
        if rating is not None and not 1 <= rating <= 5:
            yield FieldError(ErrorCode.OUT_OF_RANGE, "A rating is 1 to 5 stars.", (*path, "rating"))


def _count_errors(items: Sequence[Any], path: Path, limit: int, noun: str) -> Iterator[FieldError]:
    if not items:
        yield FieldError(ErrorCode.REQUIRED, f"Give at least one {noun}.", path)
    elif len(items) > limit:
        yield FieldError(ErrorCode.TOO_MANY, f"Give at most {limit} of them.", path)


def _time_range_errors(span: Mapping[str, Any], path: Path) -> Iterator[FieldError]:
    start, end = span["startTime"], span["endTime"]
    start_ok = yield from _seconds_errors(start, (*path, "startTime"))
    end_ok = yield from _seconds_errors(end, (*path, "endTime"))
    if start_ok and end_ok and end <= start:
        yield FieldError(
            ErrorCode.INVALID_TIME_RANGE, "endTime must be after startTime.", (*path, "endTime")
        )


def _keyframe_errors(
    keyframes: Sequence[Mapping[str, Any]], path: Path, sizes: tuple[str, str]
) -> Iterator[FieldError]:
    previous = -math.inf
    for index, keyframe in enumerate(keyframes[:MAX_KEYFRAMES]):
        at = (*path, str(index))
        time_ok = yield from _seconds_errors(keyframe["time"], (*at, "time"))
        if time_ok and keyframe["time"] < previous:
            yield FieldError(
                ErrorCode.NOT_SORTED, "Keyframes must be in time order.", (*at, "time")
            )
        if time_ok:
            previous = keyframe["time"]
        for name in ("x", "y"):
            if not 0 <= keyframe[name] <= MAX_COORDINATE:
                yield FieldError(
                    ErrorCode.OUT_OF_RANGE,
                    f"Must be between 0 and {MAX_COORDINATE:g} pixels.",
                    (*at, name),
                )
        for name in sizes:
            if not 0 < keyframe[name] <= MAX_COORDINATE:
                yield FieldError(
                    ErrorCode.OUT_OF_RANGE,
                    f"Must be more than 0 and at most {MAX_COORDINATE:g} pixels.",
                    (*at, name),
                )


def _seconds_errors(value: float, path: Path) -> Generator[FieldError, None, bool]:
    """A time in seconds from the start of the video; returns whether it is valid."""
    if not math.isfinite(value) or not 0 <= value <= MAX_SECONDS:
        yield FieldError(
            ErrorCode.OUT_OF_RANGE, f"Must be between 0 and {MAX_SECONDS:g} seconds.", path
        )
        return False
    return True
