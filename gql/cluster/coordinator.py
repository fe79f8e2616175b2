"""Which process follows which job: one follower per job across all processes.

Each job that needs following (unfinished, or owing RunPod a cancel) is leased
to one live process (`lease_owner`), whose registration (`registry`) is the
lease's lifetime. Every quarter of that lifetime the coordinator renews it,
forgets ended followers, gives up leases beyond its fair share and claims
unleased jobs up to it (`FOR UPDATE SKIP LOCKED`). Webhooks and cancels reach a
job's follower wherever it runs (`poke`). Leases decide only who polls: every
write is still a compare-and-set on the job's version. See the README,
"What each process does".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections.abc import Coroutine, Sequence
from typing import Any

from gql.cluster.feed import ChangeFeed
from gql.cluster.registry import ClusterSize, ProcessRegistry
from gql.cluster.watching import WatchRegistry
from gql.jobs.models import ExportJob
from gql.jobs.repository import JobRepository
from gql.tracking.tracker import JobTracker

logger = logging.getLogger(__name__)

# A follower given up mid-request finishes it first, for at most this long.
LET_GO_TIMEOUT_S = 30.0


def fair_share(size: ClusterSize) -> int:
    return math.ceil(size.jobs / size.processes)


def slack(share: int) -> int:
    """How far above its share a process may be before it gives jobs up."""
    return max(1, share // 10)


class Coordinator:
    def __init__(
        self,
        *,
        repo: JobRepository,
        registry: ProcessRegistry,
        tracker: JobTracker,
        feed: ChangeFeed,
        watching: WatchRegistry,
        lease_ttl_s: float,
        resume_spread_s: float,
    ) -> None:
        self._repo = repo
        self._registry = registry
        self._tracker = tracker
        self._feed = feed
        self._watching = watching
        self._turn_s = lease_ttl_s / 4
        self._resume_spread_s = resume_spread_s
        self._held: set[str] = set()
        # Leased since the current turn began: not yet in what the turn read.
        self._recent: set[str] = set()
        self._releasing: set[str] = set()
        self._size = ClusterSize(processes=1, jobs=0)
        self._turn_now = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()

    @property
    def process_id(self) -> str:
        return self._registry.process_id

    @property
    def leases_held(self) -> int:
        return len(self._held)

    async def start(self) -> None:
        """Claim this process's share before serving, then keep the leases."""
        await self._turn()
        self._loop = asyncio.create_task(self._keep_leases(), name="lease-keeper")

    async def stop(self) -> None:
        """Stop following, give every lease up and tell the others to take them."""
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self._tracker.stop()
        with contextlib.suppress(Exception):
            await self._repo.release_all()
            await self._registry.leave()
            self._feed.announce_available()
        self._held.clear()

    def health(self) -> dict[str, Any]:
        return {
            "ok": self._loop is not None and not self._loop.done(),
            "process": self.process_id,
            "leases_held": len(self._held),
            "following": self._tracker.followed_count,
            "processes": self._size.processes,
            "jobs_to_follow": self._size.jobs,
            "fair_share": fair_share(self._size),
        }

    # --- what the job service asks ---

    def adopt(self, job: ExportJob) -> None:
        """A job this process just recorded (and holds the lease of): follow it."""
        self._hold(job.id)
        self._tracker.follow(job)

    def poke(
        self, job: ExportJob, reported_run: str | None = None, *, changed: bool = True
    ) -> None:
        """Have the job's follower, wherever it runs, look at it now: after a cancel
        (`changed`: the stored job moved) or a webhook (which changes nothing stored)."""
        if self._tracker.look_now(job.id, reported_run, changed=changed):
            return
        if job.is_terminal and not job.cancel_pending:
            # Nothing left to follow, but a webhook may name another run of this
            # export to settle: a short follower here does it, without a lease.
            if reported_run is not None and reported_run != job.runpod_id:
                self._tracker.follow(job)
                self._tracker.look_now(job.id, reported_run)
            return
        self._spawn(self._poke_elsewhere(job, reported_run))

    def known_job(self, job_id: str) -> ExportJob | None:
        """The job as its follower in this process knows it (None if followed elsewhere)."""
        return self._tracker.known_job(job_id)

    async def _poke_elsewhere(self, job: ExportJob, reported_run: str | None) -> None:
        # A job being given up is not taken back: its lease is about to be released,
        # and a follower started here now would outlive it, polling beside the next
        # holder's. The next holder polls it as soon as it claims it.
        claimed = None if job.id in self._releasing else await self._repo.claim_one(job.id)
        if claimed is None or claimed.id in self._releasing:
            self._feed.wake_follower(job.id, reported_run)
            return
        self._hold(claimed.id)
        self._tracker.follow(claimed)
        self._tracker.look_now(claimed.id, reported_run)

    def _hold(self, job_id: str) -> None:
        self._held.add(job_id)
        self._recent.add(job_id)

    # --- what the feed tells ---

    def follows(self, job_id: str) -> bool:
        return self._tracker.follows(job_id)

    def on_change(self, job: ExportJob) -> None:
        # Another process changed a job followed here (a cancel, a settled run).
        self._tracker.look_now(job.id)

    def on_wake(self, job_id: str, reported_run: str | None) -> None:
        # A webhook reached another process: the stored job has not moved.
        self._tracker.look_now(job_id, reported_run, changed=False)

    def on_available(self) -> None:
        self._turn_now.set()

    def on_watching(self, job_ids: Sequence[str], user_ids: Sequence[str], *, first: bool) -> None:
        self._watching.heard(job_ids, user_ids, first=first)

    def on_worker_freed(self) -> None:
        self._tracker.worker_freed()

    def on_restored(self) -> None:
        # Changes made elsewhere during the gap may concern our followers too.
        for job_id in self._tracker.followed_ids():
            self._tracker.look_now(job_id)
        self._turn_now.set()

    # --- the lease loop ---

    async def _keep_leases(self) -> None:
        while True:
            self._turn_now.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._turn_now.wait(), self._turn_s)
            try:
                await self._turn()
            except Exception as error:
                # The database is away: the registration runs out, and leases are
                # sorted out once it is back.
                logger.warning(
                    "lease turn failed",
                    extra={"action": "lease_turn_failed", "error": repr(error)},
                )

    async def _turn(self) -> None:
        self._recent = set()
        beat = await self._registry.heartbeat()
        self._size = beat.size
        # RunPod's budget is the cluster's: each live process spends its share.
        self._tracker.set_budget_share(1 / self._size.processes)
        if not self._tracker.can_follow:
            return  # no RunPod endpoint: nothing to follow jobs with
        if beat.lapsed:
            await self._after_lapse()
        await self._forget_ended()
        share = fair_share(self._size)
        keeping = self._held - self._releasing
        # Alone, there is nobody to give jobs to, and an excess can only be
        # apparent: the jobs to follow are counted at the heartbeat, and jobs that
        # finished just before may still be held. Given up, running jobs went
        # unfollowed until claimed back, a turn or two later.
        if self._size.processes > 1 and len(keeping) > share + slack(share):
            self._give_up(sorted(keeping)[share:])
        elif len(keeping) < share:
            claimed = await self._repo.claim(share - len(keeping))
            for job in claimed:
                self._hold(job.id)
                # Soon (it may have moved on while unfollowed), but spread out.
                self._tracker.follow(job, delay=random.uniform(0, self._resume_spread_s))
            if claimed:
                logger.info(
                    "jobs claimed",
                    extra={"action": "lease_claim", "jobs": len(claimed), "share": share},
                )

    async def _after_lapse(self) -> None:
        """This process's registration ran out before it renewed it: others may
        have taken its jobs over, and now follow them."""
        leased = await self._repo.leased()
        lost = self._held - leased - self._releasing - self._recent
        for job_id in lost:
            self._tracker.let_go(job_id)
        self._held = (self._held & leased) | self._recent
        logger.warning(
            "this process's registration had lapsed; jobs taken over meanwhile are let go",
            extra={"action": "lease_lapsed", "jobs": len(lost)},
        )

    async def _forget_ended(self) -> None:
        """Leased jobs whose follower has stopped: finished ones are forgotten, and
        those that still need a follower (it crashed) are followed again."""
        ended = self._held - self._tracker.followed_ids() - self._releasing - self._recent
        if not ended:
            return
        still_due = {
            job.id: job for job in await self._repo.get_many(sorted(ended)) if job.needs_follower
        }
        for job_id in ended:
            job = still_due.get(job_id)
            if job is None:
                self._held.discard(job_id)
            else:
                self._tracker.follow(job)

    def _give_up(self, job_ids: list[str]) -> None:
        self._releasing.update(job_ids)
        logger.info(
            "giving jobs up to even out the load",
            extra={"action": "lease_give_up", "jobs": len(job_ids)},
        )
        self._spawn(self._release(job_ids))

    async def _release(self, job_ids: list[str]) -> None:
        try:
            followers = [task for job_id in job_ids if (task := self._tracker.let_go(job_id))]
            if followers:
                await asyncio.wait(followers, timeout=LET_GO_TIMEOUT_S)
            for job_id in job_ids:
                await self._repo.release(job_id)
                self._held.discard(job_id)
            self._feed.announce_available()
        finally:
            self._releasing.difference_update(job_ids)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning(
                "lease work failed",
                extra={"action": "lease_work_failed", "error": repr(task.exception())},
            )
