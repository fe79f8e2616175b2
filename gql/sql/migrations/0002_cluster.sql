-- Several API processes share one database. Each job that needs following is
-- leased to one process, its follower, until `lease_expires_at`; both expiry
-- times are seconds since the epoch by the database's clock, so the processes'
-- own clocks never matter.
ALTER TABLE export_jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE export_jobs ADD COLUMN lease_expires_at DOUBLE PRECISION;

-- Exactly the jobs a follower is needed for (see `list_jobs_to_follow`); small
-- however long the history grows.
CREATE INDEX IF NOT EXISTS export_jobs_to_follow ON export_jobs (created_at)
    WHERE status IN ('pending', 'queued', 'processing') OR cancel_pending = 1;

CREATE INDEX IF NOT EXISTS export_jobs_lease_owner ON export_jobs (lease_owner)
    WHERE status IN ('pending', 'queued', 'processing') OR cancel_pending = 1;

-- The live API processes, so that each takes a fair share of the jobs.
CREATE TABLE IF NOT EXISTS api_processes (
    id TEXT PRIMARY KEY,
    started_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
