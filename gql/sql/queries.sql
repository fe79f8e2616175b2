-- Every SQL statement the API runs, looked up by name (see gql/db.py).
-- Parameters are :named; statements are portable between SQLite and PostgreSQL.

-- name: select_one
SELECT 1 AS ok;

-- name: insert_job
INSERT INTO export_jobs (
    id, user_id, type, status, progress, message, error, project_id, game_id, params,
    input_key, output_key, runpod_job_id, webhook_token, idempotency_key, attempts,
    next_attempt_at, cancel_pending, retry_of, result, version, created_at, updated_at,
    started_at, completed_at
) VALUES (
    :id, :user_id, :type, :status, :progress, :message, :error, :project_id, :game_id, :params,
    :input_key, :output_key, :runpod_job_id, :webhook_token, :idempotency_key, :attempts,
    :next_attempt_at, :cancel_pending, :retry_of, :result, :version, :created_at, :updated_at,
    :started_at, :completed_at
)
ON CONFLICT (user_id, idempotency_key) DO NOTHING
RETURNING *;

-- name: get_job
SELECT * FROM export_jobs WHERE id = :id;

-- name: get_user_job
SELECT * FROM export_jobs WHERE id = :id AND user_id = :user_id;

-- name: get_job_by_idempotency_key
SELECT * FROM export_jobs WHERE user_id = :user_id AND idempotency_key = :idempotency_key;

-- name: list_jobs_to_follow
SELECT * FROM export_jobs
WHERE status IN ('pending', 'queued', 'processing') OR cancel_pending = 1
ORDER BY created_at;

-- The compare-and-set every state change goes through: it only lands on the
-- version it was computed from, so concurrent writers cannot undo each other.
-- name: save_job
UPDATE export_jobs SET
    status = :status, progress = :progress, message = :message, error = :error,
    runpod_job_id = :runpod_job_id, attempts = :attempts, next_attempt_at = :next_attempt_at,
    cancel_pending = :cancel_pending, result = :result, updated_at = :updated_at,
    started_at = :started_at, completed_at = :completed_at, version = version + 1
WHERE id = :id AND version = :version
RETURNING *;

-- name: get_user_project
SELECT * FROM projects WHERE id = :id AND user_id = :user_id;

-- name: get_user_game
SELECT * FROM games WHERE id = :id AND user_id = :user_id;

-- name: list_user_projects
SELECT * FROM projects WHERE user_id = :user_id ORDER BY id DESC LIMIT :limit;

-- name: list_user_games
SELECT * FROM games WHERE user_id = :user_id ORDER BY id DESC LIMIT :limit;

-- name: newest_working_video
SELECT * FROM working_videos WHERE project_id = :project_id ORDER BY version DESC LIMIT 1;

-- Versions are numbered inside the statement; a unique filename makes it idempotent.
-- name: add_working_video
INSERT INTO working_videos (project_id, filename, version, created_at)
SELECT :project_id, :filename, COALESCE(MAX(version), 0) + 1, :created_at
FROM working_videos WHERE project_id = :project_id
ON CONFLICT (filename) DO NOTHING;

-- name: insert_project
INSERT INTO projects (user_id, name, source_filename, created_at)
VALUES (:user_id, :name, :source_filename, :created_at)
RETURNING id;

-- name: insert_game
INSERT INTO games (user_id, name, video_filename, created_at)
VALUES (:user_id, :name, :video_filename, :created_at)
RETURNING id;

-- name: find_user_project_by_name
SELECT * FROM projects WHERE user_id = :user_id AND name = :name ORDER BY id LIMIT 1;

-- name: find_user_game_by_name
SELECT * FROM games WHERE user_id = :user_id AND name = :name ORDER BY id LIMIT 1;
