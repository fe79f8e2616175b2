-- Several API processes share one database. Each job that needs following is
-- leased to one process, its follower (`lease_owner`). A lease lasts as long as
-- its owner's registration in `api_processes`: a process renews all of its
-- leases at once by renewing its registration, and when it dies its leases
-- lapse with it. Times are seconds since the epoch by the database's clock, so
-- the processes' own clocks never matter.
ALTER TABLE export_jobs ADD COLUMN lease_owner TEXT;

-- Exactly the jobs a follower is needed for (see queries.sql); small however
-- long the history grows.
CREATE INDEX IF NOT EXISTS export_jobs_to_follow ON export_jobs (created_at)
    WHERE status IN ('pending', 'queued', 'processing') OR cancel_pending = 1;

CREATE INDEX IF NOT EXISTS export_jobs_lease_owner ON export_jobs (lease_owner)
    WHERE status IN ('pending', 'queued', 'processing') OR cancel_pending = 1;

-- The live API processes. `previous_expires_at` tells a process whose heartbeat
-- comes late that its registration had lapsed meanwhile (others may have taken
-- its jobs).
CREATE TABLE IF NOT EXISTS api_processes (
    id TEXT PRIMARY KEY,
    started_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    previous_expires_at DOUBLE PRECISION
);
