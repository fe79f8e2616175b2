"""A delivery that breaks off (the database or the URL signer away) gives its claim
back, so the event is sent again by the loop rather than held until the process stops."""

from __future__ import annotations

import json

from gql.db.database import Database, Statement
from gql.webhooks.delivery import DeliveryLoop
from gql.webhooks.outbox import Outbox
from gql.webhooks.retry import RetryPolicy
from gql.webhooks.sender import WebhookSender
from gql.webhooks.signing import Signer
from tests.support.waiting import eventually
from tests.support.webhook_receiver import WebhookReceiver, new_secret

COMPLETED = Statement(
    "insert_webhook_event",
    {
        "webhook_id": "msg_done",
        "job_id": "job-1",
        "type": "export.completed",
        "payload": json.dumps({"type": "export.completed", "data": {"id": "job-1"}}),
        "output_key": "out.mp4",
    },
)


async def test_a_delivery_that_breaks_off_is_sent_again(database: Database) -> None:
    signings: list[str] = []

    def sign_once_broken(key: str) -> str:
        signings.append(key)
        if len(signings) == 1:
            raise OSError("the signer is away")
        return f"https://files.example/{key}"

    await database.fetch_one_then("select_one", {}, [COMPLETED])
    # A live process: nobody else may take its claims while it lives.
    await database.fetch_one("heartbeat", id="process-a", ttl=600)
    with WebhookReceiver() as receiver:
        loop = DeliveryLoop(
            Outbox(database, owner="process-a"),
            WebhookSender(receiver.url, Signer([new_secret()]), timeout_s=5, max_connections=2),
            retry=RetryPolicy(base_s=60, max_s=60, max_attempts=3),
            poll_interval_s=0.05,
            concurrency=2,
            retention_s=86_400,
            download_url=sign_once_broken,
        )
        await loop.start()
        try:
            await eventually(receiver.delivered)
        finally:
            await loop.stop()
    [request] = receiver.delivered()
    assert request.webhook_id == "msg_done"
    assert request.event["data"]["downloadUrl"] == "https://files.example/out.mp4"
    assert signings == ["out.mp4", "out.mp4"]
