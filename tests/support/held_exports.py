"""Exports the embedded worker holds part-way until the test releases them."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from worker.runtime import current_runtime, install_runtime

HELD_EXPORTS_DIR = "HELD_EXPORTS_DIR"
"""Where `held_export` looks for the files that release held jobs."""

HELD_EXPORT_HANDLER = f"{__name__}:held_export"
"""The `local_worker_handler` setting that makes the embedded worker run `held_export`."""


class HeldExports:
    """The embedded worker runs `held_export`: each export stops at its first
    intermediate progress until released here, so a test sees that progress
    whatever this machine's speed."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def release(self, job_id: str) -> None:
        (self.folder / job_id).touch()


def held_export(job: dict[str, Any]) -> dict[str, Any]:
    """The real export handler, held at its first progress report between 0 and 100 %
    until a file named after the API's job id appears in $HELD_EXPORTS_DIR.

    A test sees that progress reach its subscriber, then releases the job: the
    intermediate state is observed however fast this machine renders."""
    from worker.handler import handler

    runtime = current_runtime()
    release = Path(os.environ[HELD_EXPORTS_DIR]) / str(job["input"]["job_id"])
    held = False

    def report(job: Mapping[str, Any], payload: dict[str, Any]) -> None:
        nonlocal held
        runtime.progress_update(job, payload)
        if not held and 0 < payload["progress"] < 100:
            held = True
            while not release.exists():
                time.sleep(0.01)

    install_runtime(dataclasses.replace(runtime, progress_update=report))
    return handler(job)
