"""The outbox's reading side: claims, outcomes, the receiver's state, listing and
replay; the only SQL on `webhook_outbox` besides the rows written with job changes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from gql.db.database import Database, Row

State = Literal["pending", "delivered", "abandoned"]

# Ended events deleted per statement when pruning.
PRUNE_BATCH = 1000


@dataclass(frozen=True, kw_only=True)
class OutboxEvent:
    seq: int
    webhook_id: str
    job_id: str
    type: str
    payload: str
    output_key: str | None
    state: str
    attempts: int
    created_at: float
    last_status: int | None
    last_error: str | None

    @classmethod
    def from_row(cls, row: Row) -> OutboxEvent:
        return cls(
            seq=row["seq"],
            webhook_id=row["webhook_id"],
            job_id=row["job_id"],
            type=row["type"],
            payload=row["payload"],
            output_key=row["output_key"],
            state=row["state"],
            attempts=row["attempts"],
            created_at=row["created_at"],
            last_status=row["last_status"],
            last_error=row["last_error"],
        )

    def summary(self) -> dict[str, Any]:
        return {
            "webhookId": self.webhook_id,
            "type": self.type,
            "job": self.job_id,
            "state": self.state,
            "attempts": self.attempts,
            "lastStatus": self.last_status,
            "lastError": self.last_error,
        }


@dataclass(frozen=True)
class Backlog:
    oldest_age_s: float | None
    """How long the oldest event still owed has waited."""
    next_due_in_s: float | None
    """Seconds until the next unclaimed event is due (negative: overdue)."""


class Outbox:
    def __init__(self, database: Database, *, owner: str) -> None:
        self._db = database
        self._owner = owner

    async def claim(self, limit: int) -> list[OutboxEvent]:
        """Up to `limit` due events, each the next one owed for its job."""
        rows = await self._db.fetch_all("claim_webhook_events", owner=self._owner, limit=limit)
        return sorted((OutboxEvent.from_row(row) for row in rows), key=lambda e: e.seq)

    async def delivered(self, event: OutboxEvent, status: int) -> float | None:
        """Seconds from the event's writing to now; None if the claim was lost."""
        row = await self._db.fetch_one(
            "webhook_delivered", seq=event.seq, owner=self._owner, status=status
        )
        return None if row is None else float(row["latency"])

    async def not_delivered(
        self,
        event: OutboxEvent,
        *,
        retry_in_s: float | None,
        status: int | None,
        error: str,
        attempted: bool = True,
    ) -> None:
        """Due again in `retry_in_s` seconds, or abandoned (None)."""
        await self._db.execute(
            "webhook_not_delivered",
            seq=event.seq,
            owner=self._owner,
            state="abandoned" if retry_in_s is None else "pending",
            attempted=int(attempted),
            status=status,
            error=error,
            delay=float(retry_in_s or 0.0),
        )

    async def release(self) -> None:
        await self._db.execute("release_webhook_claims", owner=self._owner)

    async def release_one(self, seq: int) -> None:
        """Give one claimed event back (its delivery broke off): any process may send it."""
        await self._db.execute("release_webhook_claim", seq=seq, owner=self._owner)

    async def backlog(self) -> Backlog:
        row = await self._db.fetch_one("webhook_backlog")
        assert row is not None
        return Backlog(oldest_age_s=row["oldest_age"], next_due_in_s=row["next_due_in"])

    async def disabled_reason(self, url: str) -> str | None:
        row = await self._db.fetch_one("webhook_endpoint_disabled", url=url)
        return None if row is None else str(row["reason"])

    async def disable(self, url: str, reason: str) -> None:
        await self._db.execute("disable_webhook_endpoint", url=url, reason=reason)

    async def enable(self, url: str) -> None:
        await self._db.execute("enable_webhook_endpoint", url=url)

    async def prune(self, retention_s: float, *, batch: int = PRUNE_BATCH) -> int:
        """Delete the events that ended more than `retention_s` ago, `batch` per
        statement so no transaction grows with the backlog; how many went."""
        pruned = 0
        while True:
            rows = await self._db.fetch_all(
                "prune_webhook_events", retention=retention_s, limit=batch
            )
            pruned += len(rows)
            if len(rows) < batch:
                return pruned

    async def listing(self, state: State | Literal["all"], limit: int) -> list[OutboxEvent]:
        rows = await self._db.fetch_all("list_webhook_events", state=state, limit=limit)
        return [OutboxEvent.from_row(row) for row in rows]

    async def replay(self, webhook_ids: list[str]) -> list[str]:
        """Make these events due again (all abandoned ones when the list is empty)."""
        if not webhook_ids:
            rows = await self._db.fetch_all("replay_abandoned_webhook_events")
            return [row["webhook_id"] for row in rows]
        replayed = []
        for webhook_id in webhook_ids:
            rows = await self._db.fetch_all("replay_webhook_event", webhook_id=webhook_id)
            replayed += [row["webhook_id"] for row in rows]
        return replayed
