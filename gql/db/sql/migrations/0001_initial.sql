-- Projects own a source clip and a history of working videos; games own a video.
CREATE TABLE IF NOT EXISTS projects (
    id {serial_pk},
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    source_filename TEXT,
    created_at TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS projects_user ON projects (user_id);

CREATE TABLE IF NOT EXISTS working_videos (
    id {serial_pk},
    project_id INTEGER NOT NULL REFERENCES projects (id),
    filename TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (project_id, version)
);

CREATE TABLE IF NOT EXISTS games (
    id {serial_pk},
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    video_filename TEXT,
    created_at TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS games_user ON games (user_id);

-- Timestamps are fixed-width UTC ISO-8601 text, so they sort and compare as text.
CREATE TABLE IF NOT EXISTS export_jobs (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    progress INTEGER NOT NULL DEFAULT 0,
    message TEXT,
    error TEXT,
    project_id INTEGER,
    game_id INTEGER,
    params TEXT NOT NULL,
    input_key TEXT NOT NULL,
    output_key TEXT NOT NULL,
    runpod_job_id TEXT,
    webhook_token TEXT NOT NULL,
    idempotency_key TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    cancel_pending INTEGER NOT NULL DEFAULT 0,
    retry_of TEXT,
    result TEXT,
    version INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    started_at TEXT,
    completed_at TEXT,
    UNIQUE (user_id, idempotency_key)
);

CREATE INDEX IF NOT EXISTS export_jobs_user_created ON export_jobs (user_id, created_at, id);
CREATE INDEX IF NOT EXISTS export_jobs_status ON export_jobs (status);
