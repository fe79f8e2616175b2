"""The outbox's two sides as the settings configure them (none without WEBHOOK_URL)."""

from __future__ import annotations

from collections.abc import Callable

from gql.config.settings import Settings
from gql.config.webhook_values import EventType
from gql.db.database import Database
from gql.webhooks.delivery import DeliveryLoop
from gql.webhooks.outbox import Outbox
from gql.webhooks.retry import RetryPolicy
from gql.webhooks.sender import WebhookSender
from gql.webhooks.signing import Signer
from gql.webhooks.writer import OutboxWriter


def outbox_writer(settings: Settings) -> OutboxWriter | None:
    if not settings.webhook_url:
        return None
    return OutboxWriter(
        events=frozenset(EventType(name) for name in settings.webhook_events),
        progress_interval_s=settings.webhook_progress_interval_s,
    )


def webhook_sender(settings: Settings) -> WebhookSender:
    assert settings.webhook_url is not None
    return WebhookSender(
        settings.webhook_url,
        Signer(settings.webhook_secret),
        timeout_s=settings.webhook_timeout_s,
        max_connections=settings.webhook_max_concurrency,
    )


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        base_s=settings.webhook_retry_base_s,
        max_s=settings.webhook_retry_max_s,
        max_attempts=settings.webhook_max_attempts,
    )


def delivery_loop(
    settings: Settings,
    database: Database,
    *,
    process_id: str,
    download_url: Callable[[str], str | None],
) -> DeliveryLoop:
    return DeliveryLoop(
        Outbox(database, owner=process_id),
        webhook_sender(settings),
        retry=retry_policy(settings),
        poll_interval_s=settings.webhook_poll_interval_s,
        concurrency=settings.webhook_max_concurrency,
        retention_s=settings.webhook_retention_s,
        download_url=download_url,
    )
