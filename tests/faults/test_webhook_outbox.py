"""The outbox across `kill -9`: an event being sent, or owed to a receiver that is
down, when its process dies is sent by the next process, under the same
`webhook-id`, each job's events still in order."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers.runpod_control import RunPodControl
from tests.support.api_process import ApiProcess, StartServer
from tests.support.assets import seed_assets
from tests.support.exports import runs_for, start_overlay, wait_for_status
from tests.support.graphql import GraphQLHTTP
from tests.support.waiting import eventually
from tests.support.webhook_receiver import Answer, WebhookReceiver, new_secret
from tests.support.webhooks import as_env, outbox_events, webhook_settings

pytestmark = pytest.mark.faults

LIFECYCLE = ["export.created", "export.queued", "export.started", "export.completed"]


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


@pytest.fixture
def start_hooked_server(
    start_server: StartServer, receiver: WebhookReceiver, database_url: str
) -> StartServer:
    env = {**as_env(webhook_settings(receiver, new_secret())), "DATABASE_URL": database_url}

    def start() -> ApiProcess:
        return start_server(**env)

    return start


async def _running_job(server: ApiProcess, control: RunPodControl) -> tuple[GraphQLHTTP, str, str]:
    assets = await seed_assets(server.settings, "local")
    client = GraphQLHTTP(server.graphql_url)
    job_id = await start_overlay(client, assets.project_id)
    runpod_id = (await eventually(lambda: runs_for(control, job_id)))[0]
    control.progress(runpod_id, 40)
    await wait_for_status(client, job_id, "PROCESSING")
    return client, job_id, runpod_id


async def _all_delivered(database_url: str) -> bool:
    events = await outbox_events(database_url)
    return len(events) == 4 and {event.state for event in events} == {"delivered"}


async def test_an_event_being_sent_when_its_process_is_killed_is_sent_again_under_its_id(
    start_hooked_server: StartServer,
    control: RunPodControl,
    receiver: WebhookReceiver,
    database_url: str,
) -> None:
    server = start_hooked_server()
    client, job_id, runpod_id = await _running_job(server, control)
    await eventually(lambda: len(receiver.delivered()) == 3)

    receiver.answer_always(Answer(204, delay_s=60))  # holds the next request
    control.complete(runpod_id)
    await wait_for_status(client, job_id, "COMPLETE")
    (held,) = await eventually(
        lambda: [r for r in receiver.received if r.type == "export.completed"]
    )
    server.kill()
    await client.aclose()
    receiver.answer_always(Answer())
    receiver.release()

    start_hooked_server()
    completed = await eventually(
        lambda: [r for r in receiver.received if r.type == "export.completed"][1:], timeout=30
    )
    assert {request.webhook_id for request in completed} == {held.webhook_id}
    assert receiver.delivered_for(job_id) == LIFECYCLE
    await eventually(lambda: _all_delivered(database_url))


async def test_events_owed_to_a_receiver_that_is_down_survive_a_kill(
    start_hooked_server: StartServer,
    control: RunPodControl,
    receiver: WebhookReceiver,
    database_url: str,
) -> None:
    receiver.stop()
    server = start_hooked_server()
    client, job_id, runpod_id = await _running_job(server, control)
    control.complete(runpod_id)
    await wait_for_status(client, job_id, "COMPLETE")

    async def owed() -> bool:
        events = await outbox_events(database_url, "pending")
        return len(events) == 4 and max(event.attempts for event in events) >= 1

    await eventually(owed)
    server.kill()
    await client.aclose()
    receiver.start()

    start_hooked_server()
    await eventually(lambda: len(receiver.delivered()) == 4, timeout=30)
    assert receiver.delivered_for(job_id) == LIFECYCLE
    await eventually(lambda: _all_delivered(database_url))


@pytest.mark.postgres
async def test_two_processes_share_the_deliveries_each_event_once_each_job_in_order(
    start_server: StartServer,
    control: RunPodControl,
    receiver: WebhookReceiver,
    postgres_url: str,
) -> None:
    # Registrations far longer than the test: no claim lapses, so nothing is sent twice.
    env = {
        **as_env(webhook_settings(receiver, new_secret())),
        "DATABASE_URL": postgres_url,
        "LEASE_TTL_S": "30",
    }
    first, second = start_server(**env), start_server(**env)
    assets = await seed_assets(first.settings, "local")
    job_ids = []
    for server in (first, second, first, second, first, second):
        async with GraphQLHTTP(server.graphql_url) as client:
            job_ids.append(await start_overlay(client, assets.project_id))
    runpod_ids = [
        (await eventually(lambda j=job_id: runs_for(control, j)))[0] for job_id in job_ids
    ]
    for runpod_id in runpod_ids:
        control.progress(runpod_id, 40)
    await eventually(lambda: len(receiver.delivered()) == 3 * len(job_ids), timeout=30)
    for runpod_id in runpod_ids:
        control.complete(runpod_id)

    await eventually(lambda: len(receiver.delivered()) == 4 * len(job_ids), timeout=30)
    for job_id in job_ids:
        assert receiver.delivered_for(job_id) == LIFECYCLE
    ids = [request.webhook_id for request in receiver.received]
    assert len(ids) == len(set(ids))
    assert {request.headers["user-agent"] for request in receiver.received} == {
        "export-gql-webhooks"
    }
