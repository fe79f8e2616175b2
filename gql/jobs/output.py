"""What a finished export produced, read from its worker's report.

The worker's report is stored as it came, as the job's `result` (written with
the COMPLETE transition), so the API answers from the database without looking
into storage. Reports of exports finished before workers said everything carry
duration and size only: what a report does not hold is None.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from clients.storage import content_type
from gql.jobs.models import ExportJob, ExportStatus

# A media type is `type/subtype` plus parameters; anything longer is not one.
_MAX_CONTENT_TYPE = 127


def poster_key(output_key: str) -> str:
    """Where the worker writes an export's poster frame: beside its video, as JPEG."""
    return str(PurePosixPath(output_key).with_suffix(".jpg"))


@dataclass(frozen=True, kw_only=True)
class ExportOutput:
    """A COMPLETE export's video, as its worker reported it."""

    duration_s: float | None
    width: int | None
    height: int | None
    frame_rate: float | None
    size_bytes: int | None
    content_type: str | None
    poster_key: str | None
    """Storage key of the JPEG poster frame; None when the worker wrote none."""

    @classmethod
    def of(cls, job: ExportJob) -> ExportOutput | None:
        """None unless the job is COMPLETE. A reported poster key is taken only
        when it is the job's own, so no report can get another object signed."""
        if job.status is not ExportStatus.COMPLETE:
            return None
        report: Mapping[str, Any] = job.result or {}
        reported_type = report.get("content_type")
        poster = report.get("poster_key")
        return cls(
            duration_s=_number(report.get("duration_s")),
            width=_count(report.get("width"), minimum=1),
            height=_count(report.get("height"), minimum=1),
            frame_rate=_number(report.get("frame_rate"), minimum=1e-9),
            size_bytes=_count(report.get("size_bytes"), minimum=0),
            # The API names every output's key, and its suffix says what the worker writes.
            content_type=(
                reported_type
                if isinstance(reported_type, str) and 0 < len(reported_type) <= _MAX_CONTENT_TYPE
                else content_type(job.output_key)
            ),
            poster_key=poster if poster == poster_key(job.output_key) else None,
        )


def _number(value: object, *, minimum: float = 0.0) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= minimum else None


def _count(value: object, *, minimum: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        return None
    return value
