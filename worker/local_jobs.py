"""The local endpoint's jobs: their RunPod statuses and the queue that runs them.

Every status change goes through `JobQueue._move`, which only allows forward
moves (a terminal status is final), so a late result never overwrites a
cancellation or a timeout.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from clients.runpod import RunPodStatus
from clients.storage import StorageConfig
from worker.pool import HandlerProcess

logger = logging.getLogger(__name__)


_NEXT = {
    RunPodStatus.IN_QUEUE: {RunPodStatus.IN_PROGRESS, RunPodStatus.CANCELLED},
    RunPodStatus.IN_PROGRESS: {
        RunPodStatus.IN_PROGRESS,
        RunPodStatus.COMPLETED,
        RunPodStatus.FAILED,
        RunPodStatus.CANCELLED,
        RunPodStatus.TIMED_OUT,
    },
}


@dataclass(frozen=True, kw_only=True)
class LocalJob:
    id: str
    input: Any
    webhook: str | None
    execution_timeout_s: float
    status: RunPodStatus = RunPodStatus.IN_QUEUE
    output: Any = None
    error: str | None = None
    submitted_at: float
    started_at: float | None = None
    finished_at: float | None = None

    def evolve(self, **changes: Any) -> LocalJob:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The job as RunPod's /status reports it (times in milliseconds)."""
        body: dict[str, Any] = {"id": self.id, "status": self.status.value}
        if self.started_at is not None:
            body["delayTime"] = round((self.started_at - self.submitted_at) * 1000)
            if self.finished_at is not None:
                body["executionTime"] = round((self.finished_at - self.started_at) * 1000)
        if self.output is not None:
            body["output"] = self.output
        if self.error is not None:
            body["error"] = self.error
        return body


class JobQueue:
    """Runs submitted jobs, at most `concurrency` at once, each in its own process."""

    def __init__(
        self,
        *,
        storage_config: StorageConfig,
        concurrency: int,
        handler: str,
        execution_timeout_s: float,
        retention_s: float = 1800.0,
        on_finished: Callable[[LocalJob], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.concurrency = concurrency
        self._storage_config = storage_config
        self._handler = handler
        self._execution_timeout_s = execution_timeout_s
        self._retention_s = retention_s
        self._on_finished = on_finished
        self._clock = clock
        self._slots = asyncio.Semaphore(concurrency)
        self._jobs: dict[str, LocalJob] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._processes: dict[str, HandlerProcess] = {}
        self._finished: deque[str] = deque()
        self._completed = 0
        self._failed = 0

    def submit(
        self, job_input: Any, *, webhook: str | None, execution_timeout_s: float | None
    ) -> LocalJob:
        self._forget_old()
        job = LocalJob(
            id=f"{uuid.uuid4()}-local",
            input=job_input,
            webhook=webhook,
            execution_timeout_s=execution_timeout_s or self._execution_timeout_s,
            submitted_at=self._clock(),
        )
        self._jobs[job.id] = job
        task = asyncio.create_task(self._run(job.id), name=f"local-job-{job.id}")
        # A done callback (not a finally) also runs for a task cancelled before it started.
        task.add_done_callback(lambda _: self._tasks.pop(job.id, None))
        self._tasks[job.id] = task
        logger.info("job queued", extra={"action": "local_job_queued", "job": job.id})
        return job

    def get(self, job_id: str) -> LocalJob | None:
        self._forget_old()
        return self._jobs.get(job_id)

    def cancel(self, job_id: str) -> LocalJob | None:
        job = self._jobs.get(job_id)
        if job is None or job.status.is_terminal:
            return job
        self._move(job_id, RunPodStatus.CANCELLED)
        if job.status is RunPodStatus.IN_QUEUE:
            if (task := self._tasks.get(job_id)) is not None:
                task.cancel()
        elif (process := self._processes.get(job_id)) is not None:
            process.kill()
        return self._jobs[job_id]

    def health(self) -> dict[str, Any]:
        statuses = [job.status for job in self._jobs.values()]
        running = len(self._processes)
        return {
            "jobs": {
                "completed": self._completed,
                "failed": self._failed,
                "inProgress": statuses.count(RunPodStatus.IN_PROGRESS),
                "inQueue": statuses.count(RunPodStatus.IN_QUEUE),
                "retried": 0,
            },
            "workers": {"idle": max(0, self.concurrency - running), "running": running},
        }

    async def close(self) -> None:
        """Kill running handlers and drop queued jobs."""
        for process in self._processes.values():
            process.kill()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, job_id: str) -> None:
        async with self._slots:
            if self._jobs[job_id].status is RunPodStatus.IN_QUEUE:
                await self._execute(job_id)

    async def _execute(self, job_id: str) -> None:
        job = self._jobs[job_id]

        def on_progress(payload: Any) -> None:
            self._move(job_id, RunPodStatus.IN_PROGRESS, output=payload)

        process = HandlerProcess(
            handler=self._handler,
            job={"id": job.id, "input": job.input},
            storage_config=self._storage_config,
            on_progress=on_progress,
        )
        self._processes[job_id] = process
        self._move(job_id, RunPodStatus.IN_PROGRESS, started_at=self._clock())
        try:
            result = await asyncio.wait_for(process.run(), timeout=job.execution_timeout_s)
        except TimeoutError:
            error = f"execution timeout of {job.execution_timeout_s:g}s exceeded"
            self._move(job_id, RunPodStatus.TIMED_OUT, error=error)
        else:
            if result.error is None:
                self._move(job_id, RunPodStatus.COMPLETED, output=result.output)
            else:
                self._move(job_id, RunPodStatus.FAILED, error=result.error)
        finally:
            self._processes.pop(job_id, None)

    def _move(self, job_id: str, status: RunPodStatus, **changes: Any) -> bool:
        job = self._jobs.get(job_id)
        if job is None or status not in _NEXT.get(job.status, set()):
            return False
        if status.is_terminal:
            changes["finished_at"] = self._clock()
            if status is not RunPodStatus.COMPLETED:
                changes.setdefault("output", None)  # not the last progress payload
        updated = job.evolve(status=status, **changes)
        self._jobs[job_id] = updated
        if status.is_terminal:
            self._completed += status is RunPodStatus.COMPLETED
            self._failed += status in {RunPodStatus.FAILED, RunPodStatus.TIMED_OUT}
            self._finished.append(job_id)
            logger.info(
                "job finished",
                extra={"action": "local_job_finished", "job": job_id, "status": status.value},
            )
            if self._on_finished is not None:
                self._on_finished(updated)
        return True

    def _forget_old(self) -> None:
        """Finished jobs are kept `retention_s` (RunPod keeps /run results 30 minutes)."""
        horizon = self._clock() - self._retention_s
        while self._finished:
            job = self._jobs.get(self._finished[0])
            if job is not None and (job.finished_at or 0.0) > horizon:
                break
            self._finished.popleft()
            if job is not None:
                del self._jobs[job.id]
