"""Settings that point the API at a test receiver, with delays a test can wait out."""

from __future__ import annotations

import json
from typing import Any

from gql.config.settings import Settings
from gql.db.database import Database
from gql.webhooks.outbox import Outbox, OutboxEvent
from tests.support.cli import run_export_gql
from tests.support.webhook_receiver import WebhookReceiver

# Retries come after 50 ms (doubling to 0.2 s) and the outbox is read every 50 ms,
# so a test waits on the receiver's answers, never on the production schedule.
FAST_RETRIES: dict[str, Any] = {
    "webhook_retry_base_s": 0.05,
    "webhook_retry_max_s": 0.2,
    "webhook_max_attempts": 50,
    "webhook_poll_interval_s": 0.05,
    "webhook_timeout_s": 5.0,
}


def webhook_settings(receiver: WebhookReceiver, secret: str, **overrides: Any) -> dict[str, Any]:
    return {
        "webhook_url": receiver.url,
        "webhook_secret": [secret],
        **FAST_RETRIES,
        **overrides,
    }


def as_env(values: dict[str, Any]) -> dict[str, str]:
    """Settings as the environment variables of a process."""
    return {
        name.upper(): ",".join(value) if isinstance(value, list) else str(value)
        for name, value in values.items()
    }


def outbox_listing(env: dict[str, str], cwd: Any, state: str = "all") -> list[dict[str, Any]]:
    """`export-gql webhooks list` as an operator runs it."""
    done = run_export_gql("webhooks", "list", "--state", state, "--limit", "500", env=env, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


async def outbox_events(database_url: str, state: str = "all") -> list[OutboxEvent]:
    """The outbox's rows, newest first, read straight from the database."""
    database = Database(database_url)
    await database.connect(migrate=False)
    try:
        return await Outbox(database, owner="test").listing(state, 1000)  # type: ignore[arg-type]
    finally:
        await database.disconnect()


def cli_env(settings: Settings) -> dict[str, str]:
    """The environment `export-gql webhooks` needs to reach the API's outbox."""
    return {
        "DATA_DIR": str(settings.data_dir),
        "DATABASE_URL": settings.database_url,
        "WEBHOOK_URL": settings.webhook_url or "",
        "WEBHOOK_SECRET": ",".join(settings.webhook_secret),
    }
