-- Every SQL statement the API runs, looked up by name (see gql/db/database.py).
-- Parameters are :named; statements are portable between SQLite and PostgreSQL.
-- Two placeholders are filled in per database: {now}, the database's clock in
-- seconds since the epoch, and {skip_locked}, which lets concurrent claimers pass
-- over each other's rows (PostgreSQL; SQLite has a single writer).

-- name: select_one
SELECT 1 AS ok;

-- A new job is leased to the process that records it, and recorded only within
-- its user's quota: fewer than :max_active unfinished exports, and fewer than
-- :max_starts started since :window_start. On PostgreSQL the caller holds the
-- user's lock (`lock_user`), so concurrent starts are counted one after another;
-- SQLite runs one statement at a time.
-- name: insert_job
INSERT INTO export_jobs (
    id, user_id, type, status, progress, message, error, project_id, game_id, params,
    input_key, output_key, runpod_job_id, webhook_token, idempotency_key, attempts,
    next_attempt_at, cancel_pending, retry_of, result, version, created_at, updated_at,
    started_at, completed_at, input_seconds, execution_timeout_s, queue_ms, run_ms, lease_owner,
    change_seq
)
SELECT
    :id, :user_id, :type, :status, :progress, :message, :error, :project_id, :game_id, :params,
    :input_key, :output_key, :runpod_job_id, :webhook_token, :idempotency_key, :attempts,
    :next_attempt_at, :cancel_pending, :retry_of, :result, :version, :created_at, :updated_at,
    :started_at, :completed_at, :input_seconds, :execution_timeout_s, :queue_ms, :run_ms,
    :lease_owner, (SELECT COALESCE(MAX(change_seq), 0) + 1 FROM export_jobs)
WHERE (
    SELECT COUNT(*) FROM export_jobs
    WHERE user_id = :user_id AND status IN ('pending', 'queued', 'processing')
) < :max_active
AND (
    SELECT COUNT(*) FROM export_jobs WHERE user_id = :user_id AND created_at >= :window_start
) < :max_starts
ON CONFLICT (user_id, idempotency_key) DO NOTHING
RETURNING *;

-- Why a start was refused: the user's unfinished exports, and those started in the window.
-- name: user_quota_usage
SELECT
    (
        SELECT COUNT(*) FROM export_jobs
        WHERE user_id = :user_id AND status IN ('pending', 'queued', 'processing')
    ) AS active,
    (
        SELECT COUNT(*) FROM export_jobs WHERE user_id = :user_id AND created_at >= :window_start
    ) AS recent,
    (
        SELECT MIN(created_at) FROM export_jobs
        WHERE user_id = :user_id AND created_at >= :window_start
    ) AS oldest_recent;

-- name: get_job
SELECT * FROM export_jobs WHERE id = :id;

-- name: get_user_job
SELECT * FROM export_jobs WHERE id = :id AND user_id = :user_id;

-- name: get_job_by_idempotency_key
SELECT * FROM export_jobs WHERE user_id = :user_id AND idempotency_key = :idempotency_key;

-- A job needs a follower while it is unfinished or owes RunPod a cancel; the
-- partial indexes of migration 0002 hold exactly these rows.

-- Leases: each such job is followed by one process, whose lease lasts while
-- the process is registered in `api_processes` (see migration 0002).
-- name: claim_jobs
UPDATE export_jobs SET lease_owner = :owner
WHERE id IN (
    SELECT id FROM export_jobs
    WHERE (status IN ('pending', 'queued', 'processing') OR cancel_pending = 1)
        AND (
            lease_owner IS NULL
            OR lease_owner NOT IN (SELECT id FROM api_processes WHERE expires_at > {now})
        )
    ORDER BY created_at
    LIMIT :limit
    {skip_locked}
)
RETURNING *;

-- name: claim_job
UPDATE export_jobs SET lease_owner = :owner
WHERE id = :id
    AND (status IN ('pending', 'queued', 'processing') OR cancel_pending = 1)
    AND (
        lease_owner IS NULL
        OR lease_owner = :owner
        OR lease_owner NOT IN (SELECT id FROM api_processes WHERE expires_at > {now})
    )
RETURNING *;

-- name: leased_jobs
SELECT id FROM export_jobs
WHERE lease_owner = :owner
    AND (status IN ('pending', 'queued', 'processing') OR cancel_pending = 1);

-- name: release_lease
UPDATE export_jobs SET lease_owner = NULL WHERE id = :id AND lease_owner = :owner;

-- name: release_leases
UPDATE export_jobs SET lease_owner = NULL
WHERE lease_owner = :owner
    AND (status IN ('pending', 'queued', 'processing') OR cancel_pending = 1);

-- The live API processes and the jobs that need a follower, in one round trip.
-- name: cluster_size
SELECT
    (SELECT COUNT(*) FROM api_processes WHERE expires_at > {now}) AS processes,
    (
        SELECT COUNT(*) FROM export_jobs
        WHERE status IN ('pending', 'queued', 'processing') OR cancel_pending = 1
    ) AS jobs;

-- Registers the process for another :ttl seconds; `lapsed` says whether its
-- registration had run out before (so others may have claimed its jobs).
-- name: heartbeat
INSERT INTO api_processes (id, started_at, expires_at) VALUES (:id, {now}, {now} + :ttl)
ON CONFLICT (id) DO UPDATE SET
    previous_expires_at = api_processes.expires_at, expires_at = excluded.expires_at
RETURNING COALESCE(previous_expires_at < {now}, FALSE) AS lapsed;

-- Also forgets processes that died a day ago or more.
-- name: forget_process
DELETE FROM api_processes WHERE id = :id OR expires_at < {now} - 86400;

-- The compare-and-set every state change goes through: it only lands on the
-- version it was computed from, so concurrent writers cannot undo each other.
-- A change subscribers hear of (:announce = 1) takes the next change number;
-- the caller holds the change-number lock (`JobRepository.save`), so numbers
-- are committed in the order they are taken.
-- name: save_job
UPDATE export_jobs SET
    status = :status, progress = :progress, message = :message, error = :error,
    runpod_job_id = :runpod_job_id, attempts = :attempts, next_attempt_at = :next_attempt_at,
    cancel_pending = :cancel_pending, result = :result, updated_at = :updated_at,
    started_at = :started_at, completed_at = :completed_at,
    execution_timeout_s = :execution_timeout_s, queue_ms = :queue_ms, run_ms = :run_ms,
    version = version + 1,
    change_seq = CASE
        WHEN :announce = 1 THEN (SELECT COALESCE(MAX(change_seq), 0) + 1 FROM export_jobs)
        ELSE change_seq
    END
WHERE id = :id AND version = :version
RETURNING version, change_seq;

-- A user's jobs changed after a change number, in the order they changed.
-- name: user_jobs_changed_after
SELECT * FROM export_jobs
WHERE user_id = :user_id AND change_seq > :after
ORDER BY change_seq
LIMIT :limit;

-- The newest change number of a user's jobs (0 when none).
-- name: user_last_change
SELECT COALESCE(MAX(change_seq), 0) AS change_seq FROM export_jobs WHERE user_id = :user_id;

-- A project with its newest working video's filename, in one round trip.
-- name: get_user_project
SELECT projects.*, (
    SELECT filename FROM working_videos
    WHERE project_id = projects.id ORDER BY version DESC LIMIT 1
) AS working_filename
FROM projects WHERE id = :id AND user_id = :user_id;

-- name: get_user_game
SELECT * FROM games WHERE id = :id AND user_id = :user_id;

-- name: list_user_projects
SELECT projects.*, (
    SELECT filename FROM working_videos
    WHERE project_id = projects.id ORDER BY version DESC LIMIT 1
) AS working_filename
FROM projects WHERE user_id = :user_id ORDER BY id DESC LIMIT :limit;

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

-- How long stored videos last, by storage key (null for those not known).
-- name: media_duration
SELECT seconds FROM media_durations WHERE storage_key = :storage_key;

-- name: record_media_duration
INSERT INTO media_durations (storage_key, seconds) VALUES (:storage_key, :seconds)
ON CONFLICT (storage_key) DO UPDATE SET seconds = excluded.seconds;

-- RunPod's /health, read by one process for the cluster (migration 0004): the
-- process that claims the row asks RunPod and stores the answer.
-- name: claim_health_check
UPDATE runpod_health SET claimed_by = :process, claimed_until = {now} + :period
WHERE id = 1 AND claimed_until <= {now}
RETURNING id;

-- name: save_health
UPDATE runpod_health SET observed_at = {now}, body = :body, error = :error WHERE id = 1;

-- name: latest_health
SELECT observed_at, body, error, {now} AS now FROM runpod_health WHERE id = 1;

-- Every unfinished job, in submission order: RunPod's queue as far as this
-- service knows it (queue positions and estimates, gql/tracking/waiting_room.py).
-- name: unfinished_jobs
SELECT id, user_id, type, status, progress, input_seconds, created_at, started_at, updated_at
FROM export_jobs
WHERE status IN ('pending', 'queued', 'processing')
ORDER BY created_at, id;

-- The newest finished runs, for the run-time model (gql/jobs/eta.py).
-- name: finished_runs
SELECT type, input_seconds, run_ms FROM export_jobs
WHERE status = 'complete' AND run_ms IS NOT NULL
ORDER BY completed_at DESC
LIMIT :limit;

-- Outbound webhooks (migration 0006, gql/webhooks). An event is written with the
-- job change that causes it (see `Database.fetch_one_then`).
-- name: insert_webhook_event
INSERT INTO webhook_outbox (webhook_id, job_id, type, payload, output_key, created_at, available_at)
VALUES (:webhook_id, :job_id, :type, :payload, :output_key, {now}, {now});

-- Progress is throttled per job: at most one per :interval seconds after the
-- previous one became due.
-- name: insert_webhook_progress
INSERT INTO webhook_outbox (webhook_id, job_id, type, payload, output_key, created_at, available_at)
SELECT :webhook_id, :job_id, :type, :payload, :output_key, {now},
    CASE WHEN previous.due + :interval > {now} THEN previous.due + :interval ELSE {now} END
FROM (
    SELECT COALESCE(MAX(available_at), 0) AS due FROM webhook_outbox
    WHERE job_id = :job_id AND type = 'export.progress'
) AS previous;

-- A newer progress or a final event replaces the job's progress still waiting
-- (never one being sent).
-- name: supersede_webhook_progress
DELETE FROM webhook_outbox
WHERE job_id = :job_id AND type = 'export.progress' AND state = 'pending'
    AND claimed_by IS NULL;

-- Due events whose job has no earlier event still owed, unclaimed or claimed by
-- a process that is gone; a claim lasts while its process is registered, as a
-- job lease does.
-- name: claim_webhook_events
UPDATE webhook_outbox SET claimed_by = :owner
WHERE seq IN (
    SELECT seq FROM webhook_outbox AS event
    WHERE state = 'pending' AND available_at <= {now}
        AND (
            claimed_by IS NULL
            OR claimed_by NOT IN (SELECT id FROM api_processes WHERE expires_at > {now})
        )
        AND NOT EXISTS (
            SELECT 1 FROM webhook_outbox AS earlier
            WHERE earlier.job_id = event.job_id AND earlier.seq < event.seq
                AND earlier.state = 'pending'
        )
    ORDER BY seq
    LIMIT :limit
    {skip_locked}
)
RETURNING *;

-- name: webhook_delivered
UPDATE webhook_outbox SET
    state = 'delivered', attempts = attempts + 1, claimed_by = NULL, last_status = :status,
    last_error = NULL, finished_at = {now}
WHERE seq = :seq AND claimed_by = :owner
RETURNING {now} - created_at AS latency;

-- A failed attempt (:attempted 1) or an event dropped unsent (0): due again after
-- :delay seconds, or kept as abandoned.
-- name: webhook_not_delivered
UPDATE webhook_outbox SET
    state = :state, attempts = attempts + :attempted, claimed_by = NULL,
    last_status = :status, last_error = :error, available_at = {now} + :delay,
    finished_at = CASE WHEN :state = 'abandoned' THEN {now} END
WHERE seq = :seq AND claimed_by = :owner;

-- name: release_webhook_claims
UPDATE webhook_outbox SET claimed_by = NULL WHERE claimed_by = :owner AND state = 'pending';

-- name: release_webhook_claim
UPDATE webhook_outbox SET claimed_by = NULL
WHERE seq = :seq AND claimed_by = :owner AND state = 'pending';

-- The age of the oldest event still owed, and when the next unclaimed one is due.
-- name: webhook_backlog
SELECT
    {now} - MIN(created_at) AS oldest_age,
    MIN(CASE WHEN claimed_by IS NULL THEN available_at END) - {now} AS next_due_in
FROM webhook_outbox WHERE state = 'pending';

-- name: webhook_endpoint_disabled
SELECT reason FROM webhook_endpoints WHERE url = :url;

-- name: disable_webhook_endpoint
INSERT INTO webhook_endpoints (url, disabled_at, reason) VALUES (:url, {now}, :reason)
ON CONFLICT (url) DO NOTHING;

-- name: enable_webhook_endpoint
DELETE FROM webhook_endpoints WHERE url = :url;

-- Events that ended (delivered or abandoned) more than :retention seconds ago, a
-- batch at a time; events still owed are never touched.
-- name: prune_webhook_events
DELETE FROM webhook_outbox
WHERE seq IN (
    SELECT seq FROM webhook_outbox
    WHERE state <> 'pending' AND finished_at < {now} - :retention
    ORDER BY finished_at
    LIMIT :limit
)
RETURNING seq;

-- name: list_webhook_events
SELECT * FROM webhook_outbox
WHERE :state = 'all' OR state = :state
ORDER BY seq DESC
LIMIT :limit;

-- Replayed events keep their webhook id, so a receiver that has one already skips it.
-- name: replay_webhook_event
UPDATE webhook_outbox SET
    state = 'pending', attempts = 0, available_at = {now}, claimed_by = NULL, finished_at = NULL
WHERE webhook_id = :webhook_id AND state <> 'pending'
RETURNING webhook_id;

-- name: replay_abandoned_webhook_events
UPDATE webhook_outbox SET
    state = 'pending', attempts = 0, available_at = {now}, claimed_by = NULL, finished_at = NULL
WHERE state = 'abandoned'
RETURNING webhook_id;
