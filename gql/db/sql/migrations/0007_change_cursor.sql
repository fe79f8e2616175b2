-- Every job change gets the next number of one sequence shared by all processes
-- (see `next_change_seq` in gql/db/database.py): a stream's resumable cursor.
-- Rows written before it are numbered in the order they last changed.
ALTER TABLE export_jobs ADD COLUMN change_seq BIGINT;

UPDATE export_jobs SET change_seq = ranked.n
FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY updated_at, id) AS n FROM export_jobs) AS ranked
WHERE ranked.id = export_jobs.id;

CREATE INDEX IF NOT EXISTS export_jobs_change_seq ON export_jobs (change_seq);

CREATE INDEX IF NOT EXISTS export_jobs_user_change_seq ON export_jobs (user_id, change_seq);
