"""Outbound webhooks to a real receiver on loopback, driven by the RunPod stand-in,
on SQLite and PostgreSQL: signed, filtered, throttled, in order per job, retried
as the receiver answers, and replayed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import WebhookVerificationError

from gql.webhooks.outbox import OutboxEvent
from tests.servers.runpod_fake import RunningRunPodServer
from tests.support.app_server import RunningApp, StartApi
from tests.support.assets import SeededAssets, seed_assets
from tests.support.cli import run_export_gql
from tests.support.exports import runpod_id_of, start_overlay, wait_for_status
from tests.support.graphql import GraphQLHTTP
from tests.support.waiting import eventually
from tests.support.webhook_receiver import Answer, Received, WebhookReceiver, new_secret
from tests.support.webhooks import cli_env, outbox_events, outbox_listing, webhook_settings

LIFECYCLE = ["export.created", "export.queued", "export.started", "export.completed"]
ALL_EVENTS = [*LIFECYCLE, "export.progress", "export.failed", "export.cancelled"]


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


@pytest.fixture
def secret() -> str:
    return new_secret()


class Backend:
    """The API, a client and seeded assets, with webhooks to the receiver."""

    def __init__(self, api: RunningApp, client: GraphQLHTTP, assets: SeededAssets) -> None:
        self.api, self.client, self.assets = api, client, assets

    async def start(self) -> str:
        return await start_overlay(self.client, self.assets.project_id)


@pytest.fixture
async def start_backend(
    start_api: StartApi, receiver: WebhookReceiver, secret: str
) -> AsyncIterator[Any]:
    clients: list[GraphQLHTTP] = []

    async def start(**overrides: Any) -> Backend:
        api = start_api(**webhook_settings(receiver, secret, **overrides))
        client = GraphQLHTTP(api.graphql_url)
        clients.append(client)
        return Backend(api, client, await seed_assets(api.settings, "local"))

    yield start
    for client in clients:
        await client.aclose()


async def run_to_completion(
    backend: Backend, runpod: RunningRunPodServer, job_id: str, output: Any = None
) -> None:
    runpod_id = await runpod_id_of(runpod, job_id)
    await wait_for_status(backend.client, job_id, "QUEUED")
    runpod.control.progress(runpod_id, 40)
    await wait_for_status(backend.client, job_id, "PROCESSING")
    runpod.control.complete(runpod_id, output)
    await wait_for_status(backend.client, job_id, "COMPLETE")


async def delivered(receiver: WebhookReceiver, count: int) -> list[Received]:
    return await eventually(lambda: len(receiver.delivered()) >= count and receiver.delivered())


async def test_every_event_of_an_export_reaches_the_backend_signed_in_order(
    start_backend: Any, runpod: RunningRunPodServer, receiver: WebhookReceiver, secret: str
) -> None:
    backend = await start_backend()
    job_id = await backend.start()
    output = {"duration_s": 2.0, "width": 320, "height": 180}
    await run_to_completion(backend, runpod, job_id, output)

    requests = await delivered(receiver, 4)
    bodies = [request.verify(secret) for request in requests]
    assert [body["type"] for body in bodies] == LIFECYCLE
    assert {body["data"]["id"] for body in bodies} == {job_id}
    assert {body["data"]["userId"] for body in bodies} == {"local"}
    versions = [body["data"]["version"] for body in bodies]
    assert versions == sorted(set(versions))
    assert [body["data"]["status"] for body in bodies] == [
        "PENDING",
        "QUEUED",
        "PROCESSING",
        "COMPLETE",
    ]
    completed = bodies[-1]["data"]
    assert completed["progress"] == 100
    assert completed["output"] == {
        "durationSeconds": 2.0,
        "width": 320,
        "height": 180,
        "frameRate": None,
        "sizeBytes": None,
        "contentType": "video/mp4",
        "posterUrl": None,  # the stand-in's report names no poster
    }
    assert completed["downloadUrl"].startswith(backend.api.url)
    assert bodies[0]["data"]["downloadUrl"] is None
    assert datetime.fromisoformat(bodies[-1]["timestamp"]) == datetime.fromisoformat(
        completed["updatedAt"]
    )
    assert len({request.webhook_id for request in requests}) == 4
    with pytest.raises(WebhookVerificationError):
        requests[0].verify(new_secret())

    async def counted() -> str:
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"{backend.api.url}/metrics")).text
        return text if "export_gql_webhook_delivery_seconds_count" in text else ""

    metrics = await eventually(counted)
    assert 'export_gql_webhook_deliveries_total{outcome="delivered"}' in metrics
    assert 'export_gql_webhook_attempts_total{outcome="ok"}' in metrics
    assert "export_gql_webhook_oldest_undelivered_seconds" in metrics


async def test_during_a_rotation_both_secrets_sign(
    start_backend: Any, receiver: WebhookReceiver, secret: str
) -> None:
    old = new_secret()
    backend = await start_backend(webhook_secret=[secret, old])
    await backend.start()

    request = (await delivered(receiver, 1))[0]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert request.verify(secret)["type"] == "export.created"
    assert request.verify(old)["type"] == "export.created"
    with pytest.raises(WebhookVerificationError):
        request.verify(new_secret())


async def test_only_the_events_asked_for_are_written_and_sent(
    start_backend: Any, runpod: RunningRunPodServer, receiver: WebhookReceiver
) -> None:
    backend = await start_backend(webhook_events=["export.completed", "export.failed"])
    done, failed = await backend.start(), await backend.start()
    await run_to_completion(backend, runpod, done)
    runpod.control.fail(await runpod_id_of(runpod, failed), "the worker broke")
    await wait_for_status(backend.client, failed, "ERROR")

    requests = await delivered(receiver, 2)
    assert sorted((r.type, r.event["data"]["id"]) for r in requests) == sorted(
        [("export.completed", done), ("export.failed", failed)]
    )
    assert requests[-1].event["data"]["error"] or requests[0].event["data"]["error"]
    # Nothing else was ever written: there is nothing left to send.
    listing = outbox_listing(cli_env(backend.api.settings), backend.api.settings.data_dir)
    assert sorted(event["type"] for event in listing) == ["export.completed", "export.failed"]


async def test_progress_waiting_out_its_interval_is_replaced_by_newer_and_by_the_end(
    start_backend: Any, runpod: RunningRunPodServer, receiver: WebhookReceiver
) -> None:
    backend = await start_backend(webhook_events=ALL_EVENTS, webhook_progress_interval_s=3600)
    job_id = await backend.start()
    runpod_id = await runpod_id_of(runpod, job_id)
    runpod.control.progress(runpod_id, 10)
    await wait_for_status(backend.client, job_id, "PROCESSING")
    runpod.control.progress(runpod_id, 20)
    first = (await delivered(receiver, 4))[-1]
    assert (first.type, first.event["data"]["progress"]) == ("export.progress", 20)

    for progress in (30, 40, 50):
        runpod.control.progress(runpod_id, progress)
        await eventually(lambda p=progress: _job_progress(backend, job_id, p))

    async def waiting_progress() -> list[Any]:
        events = await outbox_events(backend.api.settings.database_url, "pending")
        return [e for e in events if e.type == "export.progress"]

    (waiting,) = await eventually(waiting_progress)
    assert '"progress":50' in waiting.payload  # only the latest waits

    runpod.control.complete(runpod_id)
    await wait_for_status(backend.client, job_id, "COMPLETE")
    await eventually(lambda: receiver.delivered_for(job_id)[-1:] == ["export.completed"])
    assert receiver.delivered_for(job_id) == [*LIFECYCLE[:3], "export.progress", LIFECYCLE[3]]


async def _job_progress(backend: Backend, job_id: str, progress: int) -> bool:
    data = await backend.client.execute(
        "query ($id: ID!) { exportJob(id: $id) { progress } }", {"id": job_id}
    )
    return bool(data["exportJob"]["progress"] == progress)


async def test_progress_is_sent_at_most_once_per_interval(
    start_backend: Any, runpod: RunningRunPodServer, receiver: WebhookReceiver
) -> None:
    interval = 0.5
    backend = await start_backend(
        webhook_events=["export.progress"], webhook_progress_interval_s=interval
    )
    job_id = await backend.start()
    runpod_id = await runpod_id_of(runpod, job_id)
    runpod.control.progress(runpod_id, 10)
    await wait_for_status(backend.client, job_id, "PROCESSING")
    runpod.control.progress(runpod_id, 20)
    (first,) = await delivered(receiver, 1)
    runpod.control.progress(runpod_id, 30)

    second = (await delivered(receiver, 2))[1]
    assert second.event["data"]["progress"] == 30
    # Due no earlier than an interval after the first was written.
    written = datetime.fromisoformat(first.event["timestamp"]).timestamp()
    assert second.at >= written + interval


async def test_each_job_s_events_go_out_in_order_however_often_attempts_fail(
    start_backend: Any, runpod: RunningRunPodServer, receiver: WebhookReceiver
) -> None:
    receiver.answer(*(Answer(500) if i % 3 == 0 else Answer() for i in range(300)))
    backend = await start_backend()
    job_ids = [await backend.start() for _ in range(3)]
    for job_id in job_ids:
        await run_to_completion(backend, runpod, job_id)

    await delivered(receiver, 4 * len(job_ids))
    for job_id in job_ids:
        assert receiver.delivered_for(job_id) == LIFECYCLE
        attempts = [r for r in receiver.received if r.event["data"]["id"] == job_id]
        # No event is tried before the one before it was delivered…
        order = [LIFECYCLE.index(r.type) for r in attempts]
        assert order == sorted(order)
        # …and each is tried under one webhook id.
        assert len({(r.type, r.webhook_id) for r in attempts}) == len(LIFECYCLE)
    assert any(not r.ok for r in receiver.received)


async def test_retry_after_is_honoured(start_backend: Any, receiver: WebhookReceiver) -> None:
    receiver.answer(Answer(503, {"Retry-After": "1"}))
    backend = await start_backend(webhook_retry_max_s=5)
    await backend.start()

    await delivered(receiver, 1)
    refused, accepted = receiver.received[:2]
    assert (refused.answered, accepted.answered) == (503, 204)
    assert refused.webhook_id == accepted.webhook_id
    # The backoff alone would have tried again after about 50 ms.
    assert accepted.at - refused.at >= 1.0


async def test_a_redirect_is_a_failure_and_is_not_followed(
    start_backend: Any, receiver: WebhookReceiver
) -> None:
    receiver.answer(Answer(302, {"Location": f"{receiver.url}/elsewhere"}))
    backend = await start_backend()
    await backend.start()

    await delivered(receiver, 1)
    redirected, accepted = receiver.received[:2]
    assert (redirected.answered, accepted.answered) == (302, 204)
    assert redirected.webhook_id == accepted.webhook_id
    assert {request.path for request in receiver.received} == {"/hooks"}


async def test_a_receiver_slower_than_the_timeout_is_tried_again(
    start_backend: Any, receiver: WebhookReceiver
) -> None:
    receiver.answer(Answer(204, delay_s=30))
    backend = await start_backend(webhook_timeout_s=0.3)
    await backend.start()

    await eventually(lambda: len(receiver.received) >= 2)
    receiver.release()
    slow, retried = receiver.received[:2]
    assert slow.webhook_id == retried.webhook_id
    assert retried.at - slow.at >= 0.3


async def test_a_410_disables_the_receiver_until_a_replay_sends_everything_again(
    start_backend: Any, runpod: RunningRunPodServer, receiver: WebhookReceiver
) -> None:
    receiver.answer(Answer(410))
    backend = await start_backend()
    job_id = await backend.start()
    await run_to_completion(backend, runpod, job_id)
    env, cwd = cli_env(backend.api.settings), backend.api.settings.data_dir

    async def abandoned() -> list[dict[str, Any]]:
        listing = outbox_listing(env, cwd, "abandoned")
        return listing if len(listing) == 4 else []

    listing = await eventually(abandoned)
    assert len(receiver.received) == 1
    assert receiver.received[0].answered == 410
    assert {event["attempts"] for event in listing} == {0, 1}

    replay = run_export_gql("webhooks", "replay", "--abandoned", env=env, cwd=cwd)
    assert replay.returncode == 0, replay.stderr
    assert "enabled again" in replay.stdout
    assert "4 event(s) to be sent again" in replay.stdout

    requests = await delivered(receiver, 4)
    assert [request.type for request in requests] == LIFECYCLE
    assert requests[0].webhook_id == receiver.received[0].webhook_id


async def test_an_event_abandoned_after_its_attempts_is_replayed_by_id(
    start_backend: Any, receiver: WebhookReceiver
) -> None:
    receiver.answer(Answer(500), Answer(500))
    backend = await start_backend(webhook_max_attempts=2, webhook_events=["export.created"])
    await backend.start()
    env, cwd = cli_env(backend.api.settings), backend.api.settings.data_dir

    (event,) = await eventually(lambda: outbox_listing(env, cwd, "abandoned"))
    assert (event["attempts"], event["lastStatus"], event["lastError"]) == (2, 500, "HTTP 500")
    assert receiver.delivered() == []

    replay = run_export_gql("webhooks", "replay", "--id", event["webhookId"], env=env, cwd=cwd)
    assert replay.returncode == 0, replay.stderr
    (request,) = await delivered(receiver, 1)
    assert request.webhook_id == event["webhookId"]


async def test_events_wait_out_a_receiver_outage(
    start_backend: Any, runpod: RunningRunPodServer, receiver: WebhookReceiver
) -> None:
    receiver.stop()
    backend = await start_backend()
    job_id = await backend.start()
    await run_to_completion(backend, runpod, job_id)

    # Each job's first event is tried (and fails); the rest wait behind it.
    await eventually(lambda: _attempted_at_least(backend.api.settings.database_url, 3), timeout=30)
    receiver.start()

    requests = await delivered(receiver, 4)
    assert [request.type for request in requests] == LIFECYCLE


async def test_ended_events_are_deleted_after_their_retention_and_owed_ones_never(
    start_backend: Any, runpod: RunningRunPodServer, receiver: WebhookReceiver
) -> None:
    # One event owed for minutes (its receiver was down), then an export whose
    # events are delivered; with a retention of 1 s those go, the owed one stays.
    receiver.stop()
    backend = await start_backend(
        webhook_retention_s=1,
        webhook_retry_base_s=600,
        webhook_retry_max_s=600,
        webhook_events=["export.created", "export.completed"],
    )
    owed = await backend.start()
    database_url = backend.api.settings.database_url

    async def owed_attempted() -> bool:
        events = await outbox_events(database_url, "pending")
        return len(events) == 1 and events[0].attempts == 1

    await eventually(owed_attempted)
    receiver.start()
    job_id = await backend.start()
    await run_to_completion(backend, runpod, job_id)
    requests = await delivered(receiver, 2)
    assert {request.event["data"]["id"] for request in requests} == {job_id}

    # Read whole: a delivered event is marked so only after the receiver has it.
    async def only_the_owed_left() -> list[OutboxEvent]:
        events = await outbox_events(database_url, "all")
        return events if len(events) == 1 else []

    [still_owed] = await eventually(only_the_owed_left, timeout=30)
    assert (still_owed.job_id, still_owed.state, still_owed.type) == (
        owed,
        "pending",
        "export.created",
    )


async def _attempted_at_least(database_url: str, attempts: int) -> bool:
    events = await outbox_events(database_url, "pending")
    return len(events) == 4 and max(event.attempts for event in events) >= attempts


async def test_the_doctor_sends_a_signed_test_event(
    receiver: WebhookReceiver, secret: str, tmp_path: Path
) -> None:
    env = {"DATA_DIR": str(tmp_path), "WEBHOOK_URL": receiver.url, "WEBHOOK_SECRET": secret}
    done = run_export_gql("doctor", "--json", env=env, cwd=tmp_path)

    (request,) = receiver.received
    assert request.verify(secret)["type"] == "webhook.test"
    assert f"{receiver.url} answered 204 to a signed webhook.test event" in done.stdout

    receiver.answer(Answer(500))
    done = run_export_gql("doctor", env=env, cwd=tmp_path)
    (line,) = [line for line in done.stdout.splitlines() if " backend " in line]
    assert line.startswith("✗ backend")
    assert line.endswith(f"{receiver.url} answered 500 to a signed webhook.test event")
