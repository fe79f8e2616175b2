"""Jobs for the export handler as RunPod hands them over, and what a run of it gives back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INPUT_KEY = "games/game.mp4"
OUTPUT_KEY = "exports/out.mp4"
POSTER_KEY = "exports/out.jpg"


def job_input(
    kind: str,
    params: dict[str, Any],
    *,
    input_key: str = INPUT_KEY,
    poster_key: str | None = POSTER_KEY,
) -> dict[str, Any]:
    """The `input` the API sends; `poster_key=None` leaves it out, as APIs before
    posters did."""
    return {
        "job_id": "job-1",
        "user_id": "user-1",
        "type": kind,
        "input_key": input_key,
        "output_key": OUTPUT_KEY,
        **({"poster_key": poster_key} if poster_key is not None else {}),
        "params": params,
    }


@dataclass
class ExportRun:
    output: dict[str, Any]
    path: Path
    progress: list[dict[str, Any]]


Export = Callable[..., ExportRun]
"""The `export` fixture: runs the real handler on the stored source video."""
