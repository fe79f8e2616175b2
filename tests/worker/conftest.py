from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from clients.storage import LocalStorage
from gql.demo.media import make_video
from worker.handler import run_export
from worker.progress import ProgressReporter

WIDTH, HEIGHT, SECONDS, FPS = 320, 180, 2.0, 25
INPUT_KEY = "games/game.mp4"
OUTPUT_KEY = "exports/out.mp4"


@pytest.fixture(scope="session")
def source_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """320x180, 2 s at 25 fps, with a moving disc, frame counter and a tone."""
    return make_video(
        tmp_path_factory.mktemp("media") / "game.mp4",
        width=WIDTH,
        height=HEIGHT,
        seconds=SECONDS,
        fps=FPS,
    )


@pytest.fixture(scope="session")
def silent_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(
        tmp_path_factory.mktemp("media") / "silent.mp4",
        width=WIDTH,
        height=HEIGHT,
        seconds=SECONDS,
        fps=FPS,
        audio=False,
    )


@pytest.fixture
def storage(tmp_path: Path, source_video: Path) -> LocalStorage:
    storage = LocalStorage(tmp_path / "storage")
    storage.put_file(INPUT_KEY, source_video)
    return storage


@dataclass
class ExportRun:
    output: dict[str, Any]
    path: Path
    progress: list[dict[str, Any]]


Export = Callable[..., ExportRun]


@pytest.fixture
def export(storage: LocalStorage) -> Export:
    """Run the real handler on the stored game video; returns output, file and progress."""

    def run(kind: str, params: dict[str, Any], *, input_key: str = INPUT_KEY) -> ExportRun:
        sent: list[dict[str, Any]] = []
        job = {"id": "rp-1", "input": job_input(kind, params, input_key=input_key)}
        reporter = ProgressReporter(job, lambda _job, payload: sent.append(payload))
        output = run_export(job, storage=storage, reporter=reporter)
        return ExportRun(output, storage.path_of(output["output_key"]), sent)

    return run


def job_input(kind: str, params: dict[str, Any], *, input_key: str = INPUT_KEY) -> dict[str, Any]:
    return {
        "job_id": "job-1",
        "user_id": "user-1",
        "type": kind,
        "input_key": input_key,
        "output_key": OUTPUT_KEY,
        "params": params,
    }
