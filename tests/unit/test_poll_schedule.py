"""Who is polled how often and in which order: watched first, queued only when it can start."""

from __future__ import annotations

import pytest

from gql.cluster.feed import LocalFeed
from gql.cluster.watching import ANNOUNCEMENT_LIFETIME, WatchRegistry
from gql.jobs.broker import JobBroker
from gql.jobs.models import ExportJob, ExportStatus
from gql.jobs.repository import JobFilter
from gql.tracking.budget import Priority
from gql.tracking.schedule import GATED_MAX_S, PollSchedule
from tests.support.job_models import job


class Watching:
    def __init__(self, *job_ids: str) -> None:
        self.job_ids = set(job_ids)

    def is_watched(self, job: ExportJob) -> bool:
        return job.id in self.job_ids


class Gate:
    def __init__(self, open_: bool) -> None:
        self.open = open_

    def may_start(self) -> bool:
        return self.open


RUNNING = job(id="running", status=ExportStatus.PROCESSING)
QUEUED = job(id="queued", status=ExportStatus.QUEUED)


def schedule(*watched: str, may_start: bool = True) -> PollSchedule:
    return PollSchedule(
        interval_s=1.0,
        unwatched_interval_s=10.0,
        watchers=Watching(*watched),
        gate=Gate(may_start),
    )


@pytest.mark.parametrize(
    ("watched", "polled", "priority", "every_s"),
    [
        (True, RUNNING, Priority.URGENT, 1.0),
        (True, QUEUED, Priority.WATCHED, 1.0),
        (False, RUNNING, Priority.BACKGROUND, 10.0),
        (False, QUEUED, Priority.BACKGROUND, 10.0),
    ],
)
def test_watched_jobs_are_polled_at_the_interval_and_first(
    watched: bool, polled: ExportJob, priority: Priority, every_s: float
) -> None:
    plan = schedule(*([polled.id] if watched else []))
    assert plan.priority(polled) is priority
    assert plan.next_poll_in(polled) == (every_s, False)


def test_a_poll_a_webhook_asks_for_goes_ahead_of_the_background_but_not_of_watched_jobs() -> None:
    plan = schedule("queued")
    assert plan.priority(QUEUED, rung=True) is Priority.URGENT
    assert plan.priority(RUNNING, rung=True) is Priority.WATCHED


def test_queued_jobs_wait_for_a_free_worker_watched_or_not() -> None:
    plan = schedule("queued", may_start=False)
    assert plan.next_poll_in(QUEUED) == (GATED_MAX_S, True)
    assert plan.next_poll_in(RUNNING) == (10.0, False)  # running jobs are not held back


def test_the_unwatched_interval_is_never_shorter_than_the_watched_one() -> None:
    plan = PollSchedule(interval_s=2.0, unwatched_interval_s=0.5)
    assert plan.next_poll_in(RUNNING) == (2.0, False)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_subscribers_here_or_elsewhere_make_a_job_watched_until_they_stop_saying_so() -> None:
    broker, clock = JobBroker(), Clock()
    registry = WatchRegistry(broker, LocalFeed(broker), announce_every_s=2.0, clock=clock)
    firsts: list[tuple[str | None, str | None]] = []
    registry.on_first_watch(lambda job_id, user_id: firsts.append((job_id, user_id)))
    mine, theirs, others = job(id="a"), job(id="b"), job(id="c", user_id="user-2")

    watch = broker.watch_job(mine.user_id, mine.id)
    assert registry.is_watched(mine) and not registry.is_watched(theirs)
    assert firsts == [("a", None)]
    broker.watch_job(mine.user_id, mine.id).close()  # a second subscriber is no news
    assert firsts == [("a", None)]
    watch.close()
    assert not registry.is_watched(mine)

    registry.heard(["b"], ["user-2"], first=True)
    assert registry.is_watched(theirs) and registry.is_watched(others)
    assert firsts == [("a", None), ("b", None), (None, "user-2")]
    clock.now += ANNOUNCEMENT_LIFETIME * 2.0 - 0.1
    assert registry.is_watched(theirs)
    clock.now += 0.2  # three announcements missed: the other process's subscribers left
    assert not registry.is_watched(theirs) and not registry.is_watched(others)


def test_a_subscriber_to_all_of_a_users_jobs_watches_each_of_them() -> None:
    broker = JobBroker()
    registry = WatchRegistry(broker, LocalFeed(broker))
    broker.watch_user("user-1", JobFilter())
    assert registry.is_watched(job(id="any", user_id="user-1"))
    assert not registry.is_watched(job(id="other", user_id="user-2"))
