"""How soon, and how urgently, each followed job is asked about next.

    watched, PROCESSING          every POLL_INTERVAL_S, first in line (URGENT)
    watched, QUEUED              every POLL_INTERVAL_S, next in line (WATCHED), while
                                 a queued job can start at all (`EndpointHealth`)
    nobody watching              every POLL_INTERVAL_UNWATCHED_S, last (BACKGROUND): a
                                 safety net behind RunPod's webhook, which ends a job
                                 at once
    queued, no worker free       not before a worker frees or GATED_MAX_S passes

A webhook or a first subscriber has the job polled at once: first in line when
someone watches it, ahead of the background polls otherwise.

A job is watched while a subscriber anywhere in the cluster follows it or its
user's jobs (`gql.cluster.watching`). When RunPod's budget binds, polls wait for
their turn in that order (`gql.tracking.budget`), so intervals stretch from the
bottom up and never past the budget.
"""

from __future__ import annotations

from typing import Protocol

from gql.jobs.models import ExportJob, ExportStatus
from gql.tracking.budget import Priority

# A queued job that cannot start is still looked at this often: RunPod may have
# dropped it (its time to live) or its endpoint may have grown.
GATED_MAX_S = 60.0


class Watchers(Protocol):
    def is_watched(self, job: ExportJob) -> bool:
        """Whether a subscriber anywhere follows this job (or all its user's jobs)."""


class StartGate(Protocol):
    def may_start(self) -> bool:
        """Whether a queued job can have started (a worker is, or was just, free)."""


class NobodyWatches:
    def is_watched(self, job: ExportJob) -> bool:
        return False


class AlwaysOpen:
    def may_start(self) -> bool:
        return True


class PollSchedule:
    def __init__(
        self,
        *,
        interval_s: float,
        unwatched_interval_s: float,
        watchers: Watchers | None = None,
        gate: StartGate | None = None,
    ) -> None:
        self.interval_s = interval_s
        self.unwatched_interval_s = max(interval_s, unwatched_interval_s)
        self.watchers: Watchers = watchers or NobodyWatches()
        self.gate: StartGate = gate or AlwaysOpen()

    def is_watched(self, job: ExportJob) -> bool:
        return self.watchers.is_watched(job)

    def priority(self, job: ExportJob, *, rung: bool = False) -> Priority:
        """`rung`: a webhook or a first subscriber asks for this poll now. A webhook
        about a job nobody watches still goes ahead of the background polls, but not
        of what people watch: after a wave of completions they would be in line."""
        if not self.watchers.is_watched(job):
            return Priority.WATCHED if rung else Priority.BACKGROUND
        if rung or job.status is ExportStatus.PROCESSING:
            return Priority.URGENT
        return Priority.WATCHED

    def next_poll_in(self, job: ExportJob) -> tuple[float, bool]:
        """Seconds until the job's next poll, and whether it waits for a free worker."""
        if job.status is ExportStatus.QUEUED and not self.gate.may_start():
            return GATED_MAX_S, True
        if self.watchers.is_watched(job):
            return self.interval_s, False
        return self.unwatched_interval_s, False
