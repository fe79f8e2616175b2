"""The outbox's writing side: the rows a job change owes, written by the job
repository in the change's own transaction (`gql.jobs.repository.JobEvents`)."""

from __future__ import annotations

from collections.abc import Callable

from gql.config.webhook_values import EventType
from gql.db.database import Statement
from gql.jobs.models import ExportJob
from gql.webhooks.events import event_body, event_for, new_webhook_id


class OutboxWriter:
    def __init__(self, *, events: frozenset[EventType], progress_interval_s: float) -> None:
        self._events = events
        self._progress_interval_s = float(progress_interval_s)
        self._listeners: list[Callable[[], None]] = []

    def on_written(self, listener: Callable[[], None]) -> None:
        """`listener` hears of each commit that wrote events (the delivery loop)."""
        self._listeners.append(listener)

    def statements(self, before: ExportJob | None, after: ExportJob) -> list[Statement]:
        event = event_for(before, after)
        if event is None or event not in self._events:
            return []
        values = {
            "webhook_id": new_webhook_id(),
            "job_id": after.id,
            "type": event.value,
            "payload": event_body(event, after),
            "output_key": after.output_key if event is EventType.COMPLETED else None,
        }
        supersede = Statement("supersede_webhook_progress", {"job_id": after.id})
        if event is EventType.PROGRESS:
            progress = {**values, "interval": self._progress_interval_s}
            return [supersede, Statement("insert_webhook_progress", progress)]
        insert = Statement("insert_webhook_event", values)
        # A final event never waits behind a throttled progress: it replaces it.
        if event.is_final and EventType.PROGRESS in self._events:
            return [supersede, insert]
        return [insert]

    def written(self) -> None:
        for listener in self._listeners:
            listener()
