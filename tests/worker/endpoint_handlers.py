"""A scripted handler for the local endpoint's tests, run in the endpoint's job processes.

`scripted(job)` does what `job["input"]["action"]` says: "echo" returns its input,
"raise" raises, "crash" exits the process without a result, and "sleep" reports
progress while sleeping (writing its pid to `pid_file` first and an object to
`output_key` only if it finishes).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from clients.storage import open_storage
from worker.runtime import current_runtime, progress_update


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
