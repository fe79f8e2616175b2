-- Outbound webhooks (gql/webhooks): every event a job change owes the
-- operator's backend is written here in the same transaction as the change, then
-- delivered from here, at least once, by whichever process claims it. `seq`
-- orders each job's events; `webhook_id` is the id the receiver deduplicates on,
-- the same on every attempt. Times are seconds since the epoch by the database's
-- clock. Delivered and abandoned rows are kept (`export-gql webhooks list|replay`).
CREATE TABLE IF NOT EXISTS webhook_outbox (
    seq {serial_pk},
    webhook_id TEXT NOT NULL UNIQUE,
    job_id TEXT NOT NULL,
    type TEXT NOT NULL,
    payload TEXT NOT NULL,
    output_key TEXT,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL,
    available_at DOUBLE PRECISION NOT NULL,
    claimed_by TEXT,
    last_status INTEGER,
    last_error TEXT,
    finished_at DOUBLE PRECISION
);

-- Only the rows still owed: small however long the history grows.
CREATE INDEX IF NOT EXISTS webhook_outbox_pending ON webhook_outbox (available_at)
    WHERE state = 'pending';

CREATE INDEX IF NOT EXISTS webhook_outbox_job ON webhook_outbox (job_id, seq);

-- Receivers that answered 410 Gone: nothing is sent to them until a replay.
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    url TEXT PRIMARY KEY,
    disabled_at DOUBLE PRECISION NOT NULL,
    reason TEXT NOT NULL
);
