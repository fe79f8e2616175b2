"""Fixtures for the export handler's tests: a silent video, a storage and a handler run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from clients.storage import LocalStorage
from tests.support.source_video import write_source_video
from tests.support.worker_jobs import INPUT_KEY, Export, ExportRun, job_input
from worker.handler import run_export
from worker.progress import ProgressReporter


@pytest.fixture(scope="session")
def silent_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_source_video(tmp_path_factory.mktemp("media") / "silent.mp4", audio=False)


@pytest.fixture
def storage(tmp_path: Path, source_video: Path) -> LocalStorage:
    storage = LocalStorage(tmp_path / "storage")
    storage.put_file(INPUT_KEY, source_video)
    return storage


@pytest.fixture
def export(storage: LocalStorage) -> Export:
    """Run the real handler on the stored game video; returns output, file and progress."""

    def run(kind: str, params: dict[str, Any], **input_fields: Any) -> ExportRun:
        sent: list[dict[str, Any]] = []
        job = {"id": "rp-1", "input": job_input(kind, params, **input_fields)}
        reporter = ProgressReporter(job, lambda _job, payload: sent.append(payload))
        output = run_export(job, storage=storage, reporter=reporter)
        return ExportRun(output, storage.path_of(output["output_key"]), sent)

    return run
