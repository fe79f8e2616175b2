-- Start mutations count a user's unfinished exports (MAX_ACTIVE_EXPORTS_PER_USER);
-- this index holds only those rows, so the count stays cheap however long the
-- user's history.
CREATE INDEX IF NOT EXISTS export_jobs_user_unfinished ON export_jobs (user_id)
    WHERE status IN ('pending', 'queued', 'processing');
