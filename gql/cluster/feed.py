"""The change feed: what one process tells the others, and the single-process feed.

Every committed job change is published here once it is written. The process
that wrote it hands it to its own subscribers at once; a feed spanning several
processes (`PostgresFeed`) also carries it to the others, along with two signals
for the processes' followers:

- job        a committed change: the job's whole row, or only its id when the
             row is too large for one message (the receiver reads it back);
- wake       "whoever follows this job, look now": a RunPod webhook reached a
             process that is not the job's follower;
- available  "jobs wait for a follower": leases were given up.

Messages may arrive late, twice or out of order between processes; subscribers
go by each job's version, so none of that moves anyone backwards.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from gql.jobs.broker import JobBroker
from gql.jobs.models import ExportJob
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


class ChangeFeed(Protocol):
    def publish(self, job: ExportJob) -> None:
        """A change to `job` was written: tell every subscriber, here and elsewhere."""

    def wake_follower(self, job_id: str, reported_run: str | None) -> None: ...

    def announce_available(self) -> None: ...

    async def start(self, events: FeedEvents) -> None: ...

    async def stop(self) -> None: ...

    def health(self) -> dict[str, Any]: ...


class LocalFeed:
    """One process: its subscribers are the only ones, and it follows every job."""

    def __init__(self, broker: JobBroker) -> None:
        self._broker = broker

    def publish(self, job: ExportJob) -> None:
        self._broker.publish(job)

    def wake_follower(self, job_id: str, reported_run: str | None) -> None:
        pass

    def announce_available(self) -> None:
        pass

    async def start(self, events: FeedEvents) -> None:
        pass

    async def stop(self) -> None:
        pass

    def health(self) -> dict[str, Any]:
        return {"ok": True, "kind": "local"}


# --- messages between processes ---

Kind = Literal["job", "wake", "available"]


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

    def job(self) -> ExportJob | None:
        return ExportJob.from_row(self.row) if self.row is not None else None


def job_message(origin: str, job: ExportJob, *, max_bytes: int) -> str:
    """A `job` message carrying the row, or only the ids when it would exceed `max_bytes`."""
    header = {"k": "job", "o": origin, "t": time.time(), "id": job.id, "u": job.user_id}
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


def decode_message(payload: str) -> FeedMessage | None:
    """None for anything that is not one of ours."""
    try:
        data = json.loads(payload)
        kind = data["k"]
        if kind not in ("job", "wake", "available"):
            return None
        return FeedMessage(
            kind=kind,
            origin=str(data["o"]),
            sent_at=float(data["t"]),
            job_id=data.get("id"),
            user_id=data.get("u"),
            row=data.get("row"),
            reported_run=data.get("run"),
        )
    except (ValueError, KeyError, TypeError):
        return None
