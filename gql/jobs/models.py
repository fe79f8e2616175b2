"""Export jobs: their kinds, their statuses and the one state machine that moves them.

Every status change in the system goes through `ExportJob.apply` (pure) and then
`JobRepository.save_transition` (a compare-and-set on `version`), so two writers
can never move a job backwards and a terminal state is final.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from clients.runpod import RunPodJob, RunPodStatus
from gql.clock import parse_time


class ExportKind(StrEnum):
    OVERLAY = "overlay"
    FRAMING = "framing"
    ANNOTATE = "annotate"


class ExportStatus(StrEnum):
    PENDING = "pending"
    """Recorded; not yet accepted by RunPod (submission is retried with backoff)."""
    QUEUED = "queued"
    """Accepted by RunPod, waiting for a worker."""
    PROCESSING = "processing"
    """A worker is running it; progress and message move."""
    COMPLETE = "complete"
    """The output is stored under `output_key`."""
    ERROR = "error"
    """Failed, timed out, or lost by RunPod; `error` says why."""
    CANCELLED = "cancelled"
    """Cancelled by its user (or on RunPod's side)."""

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({ExportStatus.COMPLETE, ExportStatus.ERROR, ExportStatus.CANCELLED})
UNFINISHED_STATUSES = frozenset(ExportStatus) - TERMINAL_STATUSES

# Forward-only: a job may stay where it is (progress moves) or go further down this list.
_ORDER = {
    ExportStatus.PENDING: 0,
    ExportStatus.QUEUED: 1,
    ExportStatus.PROCESSING: 2,
}

RUNPOD_STATUS_MAP = {
    RunPodStatus.IN_QUEUE: ExportStatus.QUEUED,
    RunPodStatus.IN_PROGRESS: ExportStatus.PROCESSING,
    RunPodStatus.COMPLETED: ExportStatus.COMPLETE,
    RunPodStatus.FAILED: ExportStatus.ERROR,
    RunPodStatus.TIMED_OUT: ExportStatus.ERROR,
    RunPodStatus.CANCELLED: ExportStatus.CANCELLED,
}


# A job's message when it enters a status and nobody said anything more precise.
STATUS_MESSAGES = {
    ExportStatus.PENDING: "Waiting to be submitted",
    ExportStatus.QUEUED: "Queued, waiting for a worker",
    ExportStatus.PROCESSING: "Processing",
    ExportStatus.COMPLETE: "Export complete",
    ExportStatus.ERROR: "Export failed",
    ExportStatus.CANCELLED: "Cancelled",
}


def can_move(current: ExportStatus, target: ExportStatus) -> bool:
    if current.is_terminal:
        return False
    if target.is_terminal:
        return True
    return _ORDER[target] >= _ORDER[current]


@dataclass(frozen=True, kw_only=True)
class Change:
    """What one observation of a job would change; fields left None stay as they are."""

    status: ExportStatus
    progress: int | None = None
    message: str | None = None
    error: str | None = None
    result: Mapping[str, Any] | None = None
    queue_ms: int | None = None
    """RunPod's delayTime, when a final answer reports it."""
    run_ms: int | None = None
    """RunPod's executionTime, when a final answer reports it."""
    running_for_ms: int | None = None
    """How long it has run so far (executionTime while IN_PROGRESS): dates its start."""


class StoredParams(Mapping[str, Any]):
    """A stored job's params, kept as the JSON text they were stored as and parsed
    on first use.

    Only a submission to RunPod reads them, yet every row read (a page of the
    list query, a job read back) and every change message between processes
    carried them: a framing job's crop keyframes, a few hundred of them, made
    each of those cost 0.2 to 0.4 ms of JSON work (docs/benchmarks.md).
    """

    __slots__ = ("_parsed", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._parsed: Mapping[str, Any] | None = None

    def _value(self) -> Mapping[str, Any]:
        if self._parsed is None:
            self._parsed = json.loads(self.text)
        return self._parsed

    def __getitem__(self, key: str) -> Any:
        return self._value()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._value())

    def __len__(self) -> int:
        return len(self._value())


def params_json(params: Mapping[str, Any]) -> str:
    """The params as the JSON text of their column (stored params as they were)."""
    if isinstance(params, StoredParams):
        return params.text
    return json.dumps(params, separators=(",", ":"))


@dataclass(frozen=True, kw_only=True)
class ExportJob:
    id: str
    user_id: str
    kind: ExportKind
    status: ExportStatus
    progress: int
    message: str | None
    error: str | None
    project_id: int | None
    game_id: int | None
    params: Mapping[str, Any]
    input_key: str
    output_key: str
    runpod_id: str | None
    webhook_token: str
    idempotency_key: str | None
    attempts: int
    next_attempt_at: datetime | None
    cancel_pending: bool
    retry_of: str | None
    result: Mapping[str, Any] | None
    version: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    input_seconds: float | None = None
    """Seconds of video the export processes (`gql.jobs.requests.input_seconds`)."""
    execution_timeout_s: int | None = None
    """The execution timeout its `/run` gave RunPod."""
    queue_ms: int | None = None
    """How long RunPod kept it queued (its final delayTime)."""
    run_ms: int | None = None
    """How long it ran on RunPod (its final executionTime)."""
    change_seq: int = 0
    """Its place in the one sequence of job changes, across processes (0 before it
    is stored): what a resumed stream goes by (`gql.jobs.cursor`)."""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ExportJob:
        return cls(
            id=row["id"],
            user_id=row["user_id"],
            kind=ExportKind(row["type"]),
            status=ExportStatus(row["status"]),
            progress=row["progress"],
            message=row["message"],
            error=row["error"],
            project_id=row["project_id"],
            game_id=row["game_id"],
            params=StoredParams(row["params"]),
            input_key=row["input_key"],
            output_key=row["output_key"],
            runpod_id=row["runpod_job_id"],
            webhook_token=row["webhook_token"],
            idempotency_key=row["idempotency_key"],
            attempts=row["attempts"],
            next_attempt_at=parse_time(row["next_attempt_at"]),
            cancel_pending=bool(row["cancel_pending"]),
            retry_of=row["retry_of"],
            result=json.loads(row["result"]) if row["result"] else None,
            version=row["version"],
            created_at=_required_time(row["created_at"]),
            updated_at=_required_time(row["updated_at"]),
            started_at=parse_time(row["started_at"]),
            completed_at=parse_time(row["completed_at"]),
            input_seconds=row["input_seconds"],
            execution_timeout_s=row["execution_timeout_s"],
            queue_ms=row["queue_ms"],
            run_ms=row["run_ms"],
            change_seq=row["change_seq"] or 0,
        )

    def evolve(self, **changes: Any) -> ExportJob:
        return dataclasses.replace(self, **changes)

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    @property
    def needs_follower(self) -> bool:
        """Unfinished, or owing RunPod a cancel: some process must follow it."""
        return not self.is_terminal or self.cancel_pending

    def apply(self, change: Change, *, now: datetime) -> ExportJob | None:
        """The job after `change`, or None when it changes nothing or is not allowed."""
        if not can_move(self.status, change.status):
            return None
        progress = self.progress
        if change.progress is not None:
            progress = max(progress, min(100, max(0, change.progress)))
        if change.status is ExportStatus.COMPLETE:
            progress = 100
        message = change.message
        if message is None:
            # The message follows the status: a PROCESSING job is never "Waiting …".
            moved = change.status is not self.status
            message = STATUS_MESSAGES[change.status] if moved else self.message
        error = change.error if change.error is not None else self.error
        result = change.result if change.result is not None else self.result
        if (change.status, progress, message, error, result) == (
            self.status,
            self.progress,
            self.message,
            self.error,
            self.result,
        ):
            return None
        return self.evolve(
            status=change.status,
            progress=progress,
            message=message,
            error=error,
            result=result,
            updated_at=now,
            started_at=self.started_at or _started_at(change, now),
            completed_at=now if change.status.is_terminal else None,
            queue_ms=change.queue_ms if change.queue_ms is not None else self.queue_ms,
            run_ms=change.run_ms if change.run_ms is not None else self.run_ms,
        )


def _started_at(change: Change, now: datetime) -> datetime | None:
    """When a job first seen running (or already finished) started: as long before
    now as RunPod says it has run, which polls only see up to an interval late."""
    ran_ms = change.run_ms if change.status.is_terminal else change.running_for_ms
    if change.status is ExportStatus.PROCESSING or (change.status.is_terminal and ran_ms):
        return now - timedelta(milliseconds=ran_ms or 0)
    return None


# A worker's progress message is pushed to every watcher: keep it a status line.
MAX_MESSAGE_CHARS = 2000


def change_from_runpod(observed: RunPodJob, *, execution_timeout_s: int | None = None) -> Change:
    """Map one RunPod `/status` answer onto our state machine; `execution_timeout_s`
    is the limit the job's `/run` set, named when it ran past it."""
    status = RUNPOD_STATUS_MAP[observed.status]
    output = observed.output if isinstance(observed.output, Mapping) else None
    if observed.status.is_terminal:
        return dataclasses.replace(
            _final_change(observed, status, output, execution_timeout_s),
            queue_ms=observed.delay_time_ms,
            run_ms=observed.execution_time_ms,
        )
    if observed.status is RunPodStatus.IN_PROGRESS:
        progress = output.get("progress") if output else None
        message = output.get("message") if output else None
        return Change(
            status=status,
            progress=int(progress) if isinstance(progress, int | float) else None,
            message=_shorten(str(message), MAX_MESSAGE_CHARS) if message is not None else None,
            running_for_ms=observed.execution_time_ms,
        )
    return Change(status=status)


def _final_change(
    observed: RunPodJob,
    status: ExportStatus,
    output: Mapping[str, Any] | None,
    execution_timeout_s: int | None,
) -> Change:
    if observed.status is RunPodStatus.COMPLETED:
        return Change(status=status, message="Export complete", result=output)
    if observed.status is RunPodStatus.TIMED_OUT:
        return Change(status=status, error=timed_out_message(observed, execution_timeout_s))
    if observed.status is RunPodStatus.FAILED:
        return Change(status=status, error=runpod_error_message(observed.error))
    return Change(status=status, message="Cancelled on RunPod")


def timed_out_message(observed: RunPodJob, execution_timeout_s: int | None) -> str:
    """Why RunPod stopped a job: it ran too long, or waited too long to start."""
    if observed.execution_time_ms:
        limit = f" ({execution_timeout_s} s)" if execution_timeout_s else ""
        return f"The export timed out on RunPod: it ran past its execution timeout{limit}"
    return (
        "The export timed out on RunPod: it waited in the queue past its time to live "
        "without a worker taking it"
    )


def runpod_error_message(error: str | None, limit: int = 500) -> str:
    """One line for users. The RunPod SDK reports a raised exception as JSON with a
    traceback; only its message is shown, never the traceback."""
    text = error or ""
    try:
        decoded = json.loads(text)
    except ValueError:
        decoded = None
    if isinstance(decoded, dict):
        text = str(decoded.get("error_message") or decoded.get("error") or "")
    return _shorten(" ".join(text.split()) or "The export failed", limit)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _required_time(value: str) -> datetime:
    parsed = parse_time(value)
    assert parsed is not None
    return parsed
