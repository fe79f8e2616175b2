-- How long RunPod kept a finished job in its queue and running (its delayTime
-- and executionTime, in ms), as its final /status reported them: the history
-- queue positions are turned into times with.
ALTER TABLE export_jobs ADD COLUMN queue_ms INTEGER;
ALTER TABLE export_jobs ADD COLUMN run_ms INTEGER;

-- Finished exports, newest first, for that history.
CREATE INDEX IF NOT EXISTS export_jobs_finished_runs ON export_jobs (completed_at)
    WHERE status = 'complete' AND run_ms IS NOT NULL;
