"""The change feed: what one process tells the others, and the single-process feed.

Every committed job change is published here once it is written. The process
that wrote it hands it to its own subscribers at once; a feed spanning several
processes (`PostgresFeed`) also carries it to the others, along with two signals
for the processes' followers:

- job        a committed change: the job's whole row, or only its id when the
             row is too large for one message (the receiver reads it back);
- wake       "whoever follows this job, look now": a RunPod webhook reached a
             process that is not the job's follower;
- available  "jobs wait for a follower": leases were given up;
- watch      "subscribers here follow these jobs, and all jobs of these users":
             sent when a first subscriber arrives and again every few seconds
             for all of them (`gql.cluster.watching`).

A `job` message also says whether the change ended a job that had a worker
(`freed`), so every process learns at once that RunPod's queue moves on.

Messages may arrive late, twice or out of order between processes; subscribers
go by each job's version, so none of that moves anyone backwards.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from gql.jobs.broker import JobBroker
from gql.jobs.models import ExportJob, ExportStatus
from gql.jobs.repository import row_values


class FeedEvents(Protocol):
    """What a feed tells the process's coordinator (which follows jobs)."""

    def follows(self, job_id: str) -> bool: ...

    def on_change(self, job: ExportJob) -> None:
        """Another process changed a job this process may follow."""

    def on_wake(self, job_id: str, reported_run: str | None) -> None: ...

    def on_available(self) -> None: ...

    def on_restored(self) -> None:
        """The feed is back after a gap in which messages may have been missed."""

    def on_watching(self, job_ids: Sequence[str], user_ids: Sequence[str], *, first: bool) -> None:
        """Subscribers elsewhere follow these jobs and users; `first`: new ones."""

    def on_worker_freed(self) -> None:
        """A job that had a RunPod worker ended (here or elsewhere)."""


class ChangeFeed(Protocol):
    def publish(self, job: ExportJob) -> None:
        """A change to `job` was written: tell every subscriber, here and elsewhere."""

    def wake_follower(self, job_id: str, reported_run: str | None) -> None: ...

    def announce_available(self) -> None: ...

    def announce_watching(
        self, job_ids: Sequence[str], user_ids: Sequence[str], *, first: bool
    ) -> None:
        """Tell the other processes what this one's subscribers follow."""

    async def start(self, events: FeedEvents) -> None: ...

    async def stop(self) -> None: ...

    def health(self) -> dict[str, Any]: ...


class LocalFeed:
    """One process: its subscribers are the only ones, and it follows every job."""

    def __init__(self, broker: JobBroker) -> None:
        self._broker = broker
        self._events: FeedEvents | None = None

    def publish(self, job: ExportJob) -> None:
        self._broker.publish(job)
        if self._events is not None and freed_a_worker(job):
            self._events.on_worker_freed()

    def wake_follower(self, job_id: str, reported_run: str | None) -> None:
        pass

    def announce_available(self) -> None:
        pass

    def announce_watching(
        self, job_ids: Sequence[str], user_ids: Sequence[str], *, first: bool
    ) -> None:
        pass

    async def start(self, events: FeedEvents) -> None:
        self._events = events

    async def stop(self) -> None:
        pass

    def health(self) -> dict[str, Any]:
        return {"ok": True, "kind": "local"}


# --- messages between processes ---

Kind = Literal["job", "wake", "available", "watch"]
KINDS = frozenset(("job", "wake", "available", "watch"))


def freed_a_worker(job: ExportJob) -> bool:
    """Whether a change to `job` (published once per move) ended a job that had a
    RunPod worker: it completed (whether or not a poll saw it running), or reached
    another final state after it was seen running."""
    return job.status is ExportStatus.COMPLETE or (job.is_terminal and job.started_at is not None)


@dataclass(frozen=True, kw_only=True)
class FeedMessage:
    kind: Kind
    origin: str
    """The sending process: it ignores its own messages."""
    sent_at: float
    """Wall-clock seconds, for the feed-lag metric."""
    job_id: str | None = None
    user_id: str | None = None
    row: dict[str, Any] | None = None
    """A `job` message's row, when it fits."""
    reported_run: str | None = None
    freed: bool = False
    """A `job` message: the change ended a job that had a worker."""
    watched_jobs: tuple[str, ...] = ()
    watching_users: tuple[str, ...] = ()
    first: bool = False
    """A `watch` message: these subscribers have just arrived."""

    def job(self) -> ExportJob | None:
        return ExportJob.from_row(self.row) if self.row is not None else None


def job_message(origin: str, job: ExportJob, *, max_bytes: int) -> str:
    """A `job` message carrying the row, or only the ids when it would exceed `max_bytes`."""
    header: dict[str, Any] = {
        "k": "job",
        "o": origin,
        "t": time.time(),
        "id": job.id,
        "u": job.user_id,
    }
    if freed_a_worker(job):
        header["f"] = 1
    row = row_values(job)
    # Params alone over the limit (a framing job's many keyframes): not worth encoding.
    if len(row["params"]) < max_bytes:
        encoded = json.dumps({**header, "row": row}, separators=(",", ":"))
        if len(encoded.encode()) <= max_bytes:
            return encoded
    return json.dumps(header, separators=(",", ":"))


def signal_message(
    origin: str, kind: Kind, job_id: str | None = None, run: str | None = None
) -> str:
    message = {"k": kind, "o": origin, "t": time.time(), "id": job_id, "run": run}
    return json.dumps(message, separators=(",", ":"))


def watch_messages(
    origin: str,
    job_ids: Sequence[str],
    user_ids: Sequence[str],
    *,
    first: bool,
    max_bytes: int,
) -> list[str]:
    """`watch` messages naming these jobs and users, each within `max_bytes`."""
    messages: list[str] = []
    names = [("j", job_id) for job_id in job_ids] + [("w", user_id) for user_id in user_ids]
    while names or not messages:
        message: dict[str, Any] = {"k": "watch", "o": origin, "t": time.time(), "j": [], "w": []}
        if first:
            message["first"] = 1
        size = len(json.dumps(message, separators=(",", ":")).encode())
        while names:
            key, name = names[0]
            cost = len(json.dumps(name).encode()) + 1
            if size + cost > max_bytes and (message["j"] or message["w"]):
                break
            message[key].append(name)
            size += cost
            names.pop(0)
        messages.append(json.dumps(message, separators=(",", ":")))
    return messages


def decode_message(payload: str) -> FeedMessage | None:
    """None for anything that is not one of ours."""
    try:
        data = json.loads(payload)
        kind = data["k"]
        if kind not in KINDS:
            return None
        return FeedMessage(
            kind=kind,
            origin=str(data["o"]),
            sent_at=float(data["t"]),
            job_id=data.get("id"),
            user_id=data.get("u"),
            row=data.get("row"),
            reported_run=data.get("run"),
            freed=bool(data.get("f")),
            watched_jobs=tuple(str(job_id) for job_id in data.get("j", ())),
            watching_users=tuple(str(user_id) for user_id in data.get("w", ())),
            first=bool(data.get("first")),
        )
    except (ValueError, KeyError, TypeError):
        return None
