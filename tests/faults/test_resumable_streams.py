"""A stream resumes from its last cursor on another process, and on a process
restarted after `kill -9`: every change it missed, in order, none twice."""

from __future__ import annotations

import httpx
import pytest

from tests.servers.runpod_control import RunPodControl
from tests.support.api_process import ApiProcess, StartServer
from tests.support.assets import seed_assets
from tests.support.graphql import GraphQLHTTP
from tests.support.http_streams import HTTPSubscription
from tests.support.resume import (
    RESUME_JOBS,
    Change,
    at_progress,
    hang_up_after_first_change,
    next_events,
    queued_jobs,
)

pytestmark = [pytest.mark.faults, pytest.mark.postgres]


async def resumed(
    http: httpx.AsyncClient, server: ApiProcess, variables: dict[str, object], last_id: str, n: int
) -> tuple[list[Change], str]:
    """What a client reconnecting to `server` with its last event id is sent first."""
    stream = HTTPSubscription(
        http, server.graphql_url, "sse", RESUME_JOBS, variables, last_event_id=last_id
    )
    try:
        changes, ids = await next_events(stream.frames(), n)
    finally:
        await stream.close()
    assert ids[-1] is not None
    return changes, ids[-1]


async def test_a_stream_resumes_on_another_process_and_after_a_restart(
    start_server: StartServer, postgres_url: str, control: RunPodControl
) -> None:
    a, b = (start_server(DATABASE_URL=postgres_url, POLL_INTERVAL_S="0.2") for _ in range(2))
    assets = await seed_assets(a.settings, "local")
    on_a, on_b = GraphQLHTTP(a.graphql_url), GraphQLHTTP(b.graphql_url)
    jobs = await queued_jobs(on_a, control, assets.project_id, 2)
    (x, run_x), (y, run_y) = jobs

    async with httpx.AsyncClient(timeout=30) as http:
        variables, last_id = await hang_up_after_first_change(
            http, a.graphql_url, on_a, control, jobs
        )

        for run, job, progress in ((run_y, y, 20), (run_x, x, 30)):
            control.progress(run, progress)
            await at_progress(on_b, job, progress)
        seen, last_id = await resumed(http, b, variables, last_id, 2)
        assert seen == [(y, "PROCESSING", 20), (x, "PROCESSING", 30)]

        a.kill()
        control.complete(run_y)
        await at_progress(on_b, y, 100)
        a.start()
        control.complete(run_x)
        await at_progress(on_a, x, 100)
        seen, _ = await resumed(http, a, variables, last_id, 2)
        assert seen == [(y, "COMPLETE", 100), (x, "COMPLETE", 100)]
    await on_a.aclose()
    await on_b.aclose()
