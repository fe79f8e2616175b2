"""Handlers for the local endpoint's tests, run in the endpoint's job processes.

`scripted(job)` does what `job["input"]["action"]` says: "echo" returns its input,
"raise" raises, "crash" exits the process without a result, and "sleep" reports
progress while sleeping (writing its pid to `pid_file` first and an object to
`output_key` only if it finishes). `held_export(job)` is the real export, held
part-way until the test lets it go on.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from clients.storage import open_storage
from worker.runtime import current_runtime, install_runtime, progress_update


def scripted(job: dict[str, Any]) -> dict[str, Any]:
    task = job["input"]
    action = task.get("action")
    if action == "echo":
        return {"echo": task}
    if action == "raise":
        raise ValueError(task.get("message", "scripted failure"))
    if action == "crash":
        os._exit(3)
    if action == "sleep":
        return _sleep(job, task)
    raise ValueError(f"unknown action {action!r}")


def _sleep(job: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
    if "pid_file" in task:
        Path(task["pid_file"]).write_text(str(os.getpid()))
    seconds = float(task["seconds"])
    steps = 10
    for step in range(steps):
        progress_update(job, {"progress": step * 100 // steps, "message": "sleeping"})
        time.sleep(seconds / steps)
    if "output_key" in task:
        storage = open_storage(current_runtime().storage_config)
        with tempfile.NamedTemporaryFile() as tmp:
            storage.put_file(task["output_key"], Path(tmp.name))
    return {"slept": seconds}


HELD_EXPORTS_DIR = "HELD_EXPORTS_DIR"
"""Where `held_export` looks for the files that release held jobs."""


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
