"""Progress of one job, sent as `{"progress": 0..100, "message": str}` payloads.

The sink has the shape of `runpod.serverless.progress_update(job, payload)`; on
RunPod each call is an HTTP request, so `ProgressReporter` throttles: it sends
when progress has moved `min_step` points, when the message changes, or when
`min_interval_s` has passed since the last send with something new to say.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

logger = logging.getLogger(__name__)

ProgressUpdate = Callable[[Mapping[str, Any], dict[str, Any]], None]
"""(job, payload) -> None, like runpod.serverless.progress_update."""


class ProgressReporter:
    def __init__(
        self,
        job: Mapping[str, Any],
        send: ProgressUpdate,
        *,
        min_step: int = 2,
        min_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._job = job
        self._send = send
        self._min_step = min_step
        self._min_interval_s = min_interval_s
        self._clock = clock
        self._progress = 0
        self._message = ""
        self._sent: tuple[int, str] | None = None
        self._sent_at = 0.0

    @property
    def progress(self) -> int:
        return self._progress

    def update(self, progress: float, message: str) -> None:
        """Record progress (it never goes back) and send it when due."""
        self._progress = max(self._progress, min(100, max(0, int(progress))))
        self._message = message
        current = (self._progress, message)
        if current == self._sent:
            return
        now = self._clock()
        if (
            self._sent is None
            or message != self._sent[1]
            or self._progress >= self._sent[0] + self._min_step
            or now - self._sent_at >= self._min_interval_s
        ):
            self._emit(current, now)

    def finish(self, message: str) -> None:
        """Report 100 % (always sent)."""
        self._progress = 100
        self._message = message
        if self._sent != (100, message):
            self._emit((100, message), self._clock())

    def _emit(self, current: tuple[int, str], now: float) -> None:
        self._sent, self._sent_at = current, now
        try:
            self._send(self._job, {"progress": current[0], "message": current[1]})
        except Exception:
            # Progress is advisory: a failed update must not fail the export.
            logger.warning(
                "progress update failed",
                extra={"action": "progress_update_failed", "job": self._job.get("id")},
                exc_info=True,
            )


def runpod_progress_update(job: Mapping[str, Any], payload: dict[str, Any]) -> None:
    """`runpod.serverless.progress_update`, imported on first use (runpod is an extra)."""
    try:
        from runpod.serverless import progress_update
    except ImportError:
        logger.debug(
            "runpod is not installed; progress dropped", extra={"action": "progress_dropped"}
        )
        return
    progress_update(dict(job), payload)
