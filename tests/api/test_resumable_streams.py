"""A stream resumed from its last cursor gets exactly what it missed, then live changes;
over SSE the cursor is the event id and `Last-Event-ID` resumes; a bad cursor is refused."""

from __future__ import annotations

import httpx
import pytest

from gql.jobs.cursor import decode_cursor, encode_cursor
from tests.servers.runpod_fake import RunningRunPodServer
from tests.support.app_server import RunningApp
from tests.support.assets import SeededAssets
from tests.support.graphql import GraphQLHTTP, GraphQLWebSocket, SubscriptionError, collect
from tests.support.http_streams import HTTPSubscription
from tests.support.resume import (
    RESUME_JOB,
    RESUME_JOBS,
    RUNNING,
    at_progress,
    cursor_of,
    hang_up_after_first_change,
    next_changes,
    next_events,
    queued_jobs,
)


async def test_a_resumed_stream_gets_each_missed_job_once_in_its_latest_state_then_live(
    api: RunningApp, client: GraphQLHTTP, assets: SeededAssets, runpod: RunningRunPodServer
) -> None:
    control = runpod.control
    (a, run_a), (b, run_b) = await queued_jobs(client, control, assets.project_id, 2)
    socket = await GraphQLWebSocket.connect(api.ws_url)
    since = await cursor_of(client, b)
    stream = socket.subscribe(RESUME_JOBS, {"since": since, "filter": RUNNING})
    control.progress(run_a, 10)
    seen, cursors = await next_changes(stream, 1)
    assert seen == [(a, "PROCESSING", 10)]
    await socket.close()

    # Missed while away: b twice, a once in between.
    for run, job, progress in ((run_b, b, 20), (run_a, a, 30), (run_b, b, 40)):
        control.progress(run, progress)
        await at_progress(client, job, progress)

    socket = await GraphQLWebSocket.connect(api.ws_url)
    stream = socket.subscribe(RESUME_JOBS, {"since": cursors[-1], "filter": RUNNING})
    replayed, replay_cursors = await next_changes(stream, 2)
    assert replayed == [(a, "PROCESSING", 30), (b, "PROCESSING", 40)]
    control.complete(run_a)
    live, live_cursors = await next_changes(stream, 1)
    assert live == [(a, "COMPLETE", 100)]
    # Opaque to clients; the test reads them to check that they only grow.
    order = [decode_cursor(c) for c in cursors + replay_cursors + live_cursors]
    assert order == sorted(set(order))
    await socket.close()


async def test_sse_events_carry_the_cursor_as_id_and_last_event_id_resumes(
    api: RunningApp, client: GraphQLHTTP, assets: SeededAssets, runpod: RunningRunPodServer
) -> None:
    control = runpod.control
    jobs = await queued_jobs(client, control, assets.project_id, 2)
    (a, run_a), (b, run_b) = jobs
    async with httpx.AsyncClient(timeout=30) as http:
        variables, last_id = await hang_up_after_first_change(
            http, api.graphql_url, client, control, jobs
        )

        control.progress(run_b, 20)
        await at_progress(client, b, 20)
        control.complete(run_a)
        await at_progress(client, a, 100)

        # What an EventSource does on reconnecting: the same request, and the last id.
        again = HTTPSubscription(
            http, api.graphql_url, "sse", RESUME_JOBS, variables, last_event_id=last_id
        )
        replayed, _ = await next_events(again.frames(), 2)
        assert replayed == [(b, "PROCESSING", 20), (a, "COMPLETE", 100)]
        await again.close()


async def test_a_job_stream_resumed_after_its_final_state_completes_at_once(
    api: RunningApp, client: GraphQLHTTP, assets: SeededAssets, runpod: RunningRunPodServer
) -> None:
    ((job_id, run),) = await queued_jobs(client, runpod.control, assets.project_id, 1)
    queued = await cursor_of(client, job_id)
    runpod.control.complete(run)
    await at_progress(client, job_id, 100)
    final = await cursor_of(client, job_id)
    socket = await GraphQLWebSocket.connect(api.ws_url)

    missed = await collect(socket.subscribe(RESUME_JOB, {"id": job_id, "since": queued}))
    assert [(u["exportJob"]["status"], u["exportJob"]["changeCursor"]) for u in missed] == [
        ("COMPLETE", final)
    ]
    assert await collect(socket.subscribe(RESUME_JOB, {"id": job_id, "since": final})) == []
    await socket.close()


@pytest.mark.parametrize(
    ("since", "code"),
    [("not-a-cursor", "BAD_CURSOR"), (encode_cursor(10**15), "UNKNOWN_CURSOR")],
)
async def test_a_cursor_that_cannot_be_resumed_from_is_a_typed_error(
    api: RunningApp, client: GraphQLHTTP, assets: SeededAssets, since: str, code: str
) -> None:
    socket = await GraphQLWebSocket.connect(api.ws_url)
    for query, variables in (
        (RESUME_JOBS, {"since": since}),
        (RESUME_JOB, {"id": "any", "since": since}),
    ):
        with pytest.raises(SubscriptionError) as refused:
            await collect(socket.subscribe(query, variables))
        (error,) = refused.value.payload
        assert error["extensions"] == {"code": code}
        assert "re-read the list" in error["message"]
    await socket.close()
