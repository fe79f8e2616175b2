-- Ended events are deleted once past WEBHOOK_RETENTION_S (`prune_webhook_events`):
-- found by when they ended, without reading the events still owed.
CREATE INDEX IF NOT EXISTS webhook_outbox_finished ON webhook_outbox (finished_at)
    WHERE state <> 'pending';
