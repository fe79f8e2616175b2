"""What a handler needs from the process it runs in: storage and a progress sink.

On RunPod both come from the environment (storage variables, the runpod SDK).
The local endpoint installs its own in each job process before calling the
handler, so the handler keeps RunPod's `handler(job) -> dict` shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clients.storage import StorageConfig
from worker.progress import ProgressUpdate, runpod_progress_update


@dataclass(frozen=True, kw_only=True)
class WorkerRuntime:
    storage_config: StorageConfig
    progress_update: ProgressUpdate


# One per process; empty means "from the environment".
_installed: dict[str, WorkerRuntime] = {}


def install_runtime(runtime: WorkerRuntime) -> None:
    _installed["runtime"] = runtime


def current_runtime() -> WorkerRuntime:
    if "runtime" in _installed:
        return _installed["runtime"]
    return WorkerRuntime(
        storage_config=StorageConfig.from_env(), progress_update=runpod_progress_update
    )


def progress_update(job: Mapping[str, Any], payload: dict[str, Any]) -> None:
    """Send a progress payload through this process's sink (for any handler)."""
    current_runtime().progress_update(job, payload)
