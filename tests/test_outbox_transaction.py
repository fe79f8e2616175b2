"""An outbox row is written in the same transaction as the change that owes it: with
it or not at all, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from gql.db.database import Database, Statement
from gql.webhooks.outbox import Outbox


def _event(webhook_id: str) -> Statement:
    return Statement(
        "insert_webhook_event",
        {
            "webhook_id": webhook_id,
            "job_id": "job-1",
            "type": "export.created",
            "payload": "{}",
            "output_key": None,
        },
    )


async def _webhook_ids(database: Database) -> list[str]:
    return [event.webhook_id for event in await Outbox(database, owner="t").listing("all", 10)]


async def test_the_statements_after_a_change_are_written_with_it(database: Database) -> None:
    row = await database.fetch_one_then("select_one", {}, [_event("msg_a"), _event("msg_b")])
    assert row is not None and row["ok"] == 1
    assert sorted(await _webhook_ids(database)) == ["msg_a", "msg_b"]


async def test_a_failing_statement_undoes_the_whole_transaction(database: Database) -> None:
    with pytest.raises(Exception, match=r"(?i)unique"):
        await database.fetch_one_then("select_one", {}, [_event("msg_a"), _event("msg_a")])
    assert await _webhook_ids(database) == []
    # The connection is usable afterwards.
    await database.fetch_one_then("select_one", {}, [_event("msg_c")])
    assert await _webhook_ids(database) == ["msg_c"]


async def test_nothing_follows_a_change_that_did_not_happen(database: Database) -> None:
    row = await database.fetch_one_then(
        "webhook_endpoint_disabled", {"url": "https://nowhere"}, [_event("msg_a")]
    )
    assert row is None
    assert await _webhook_ids(database) == []
