-- Seconds of video an export processes: its input's length (framing, overlay) or
-- its clips' total (annotate); null when unknown. RunPod's execution timeout is
-- derived from it, and sent with the job's `/run`.
ALTER TABLE export_jobs ADD COLUMN input_seconds DOUBLE PRECISION;
ALTER TABLE export_jobs ADD COLUMN execution_timeout_s INTEGER;

-- How long each stored video lasts, by storage key: known when the video is
-- stored by us (seed-demo, a finished export) or reported by a worker that read it.
CREATE TABLE IF NOT EXISTS media_durations (
    storage_key TEXT PRIMARY KEY,
    seconds DOUBLE PRECISION NOT NULL
);

-- RunPod's `/health` as one process read it for the whole cluster: whoever
-- claims the row when its claim has run out asks RunPod, and the others read
-- the answer. Times are seconds since the epoch by the database's clock.
CREATE TABLE IF NOT EXISTS runpod_health (
    id INTEGER PRIMARY KEY,
    claimed_by TEXT,
    claimed_until DOUBLE PRECISION NOT NULL,
    observed_at DOUBLE PRECISION,
    body TEXT,
    error TEXT
);

INSERT INTO runpod_health (id, claimed_until) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
