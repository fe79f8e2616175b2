"""`export-gql webhooks list|replay`: the outbox as an operator sees it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gql.config.settings import Settings
from gql.db.database import Database
from gql.webhooks.outbox import Outbox, OutboxEvent, State

# Commands read the outbox without following jobs: no process id of their own.
_OPERATOR = "export-gql webhooks"


@dataclass(frozen=True)
class Replayed:
    webhook_ids: list[str]
    enabled_again: str | None
    """Why the receiver had been disabled, when the replay enabled it again."""


async def list_events(
    settings: Settings, state: State | Literal["all"], limit: int
) -> list[OutboxEvent]:
    database = await _open(settings)
    try:
        return await Outbox(database, owner=_OPERATOR).listing(state, limit)
    finally:
        await database.disconnect()


async def replay(settings: Settings, webhook_ids: list[str]) -> Replayed:
    """Make the events (all abandoned ones when none are named) due again, and send
    to the receiver again if it had answered 410."""
    database = await _open(settings)
    try:
        outbox = Outbox(database, owner=_OPERATOR)
        disabled = None
        if settings.webhook_url:
            disabled = await outbox.disabled_reason(settings.webhook_url)
            await outbox.enable(settings.webhook_url)
        return Replayed(await outbox.replay(webhook_ids), disabled)
    finally:
        await database.disconnect()


async def _open(settings: Settings) -> Database:
    database = Database(settings.database_url)
    await database.connect()
    return database
