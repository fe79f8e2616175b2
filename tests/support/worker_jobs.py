"""Jobs for the export handler as RunPod hands them over, and what a run of it gives back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INPUT_KEY = "games/game.mp4"
OUTPUT_KEY = "exports/out.mp4"


def job_input(kind: str, params: dict[str, Any], *, input_key: str = INPUT_KEY) -> dict[str, Any]:
    return {
        "job_id": "job-1",
        "user_id": "user-1",
        "type": kind,
        "input_key": input_key,
        "output_key": OUTPUT_KEY,
        "params": params,
    }


@dataclass
class ExportRun:
    output: dict[str, Any]
    path: Path
    progress: list[dict[str, Any]]


Export = Callable[..., ExportRun]
"""The `export` fixture: runs the real handler on the stored source video."""
