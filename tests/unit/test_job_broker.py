"""A watch tells changes from refreshes, whichever way a newer state arrives."""

from __future__ import annotations

from gql.jobs.broker import JobBroker
from gql.jobs.repository import JobFilter
from tests.support.job_models import job


async def test_a_nudge_with_a_newer_state_than_the_one_sent_is_a_change() -> None:
    broker = JobBroker()
    watch = broker.watch_job("user-1", "job-1")
    broker.publish(job(version=3))
    assert (await watch.next_update()).refresh is False
    # Another process's change, read from the database before the feed brings it.
    broker.nudge(job(version=4))
    update = await watch.next_update()
    assert (update.job.version, update.refresh) == (4, False)
    broker.publish(job(version=4))  # the feed's copy: already sent
    broker.nudge(job(version=4))
    update = await watch.next_update()
    assert (update.job.version, update.refresh) == (4, True)


async def test_a_nudge_of_a_job_the_watch_has_not_sent_is_a_refresh() -> None:
    broker = JobBroker()
    watch = broker.watch_user("user-1", JobFilter())
    broker.nudge(job(version=2))
    update = await watch.next_update()
    assert (update.job.version, update.refresh) == (2, True)
