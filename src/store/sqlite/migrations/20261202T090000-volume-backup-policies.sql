-- Per-volume backup policies (issue 14, items 4–5): what the hub stores of them, the latest
-- outcome of the runs the agents carry out on their own clock, and one more job kind,
-- `volume-policies`, that sends a node its whole set. SQLite cannot change a CHECK constraint
-- in place, so the job tables are copied again as in the volume-backup-jobs migration.
CREATE TABLE volume_backup_policies (
  node TEXT NOT NULL,
  volume TEXT NOT NULL,
  -- the policy as JSON (protocol/volume-backup.ts volumeBackupPolicy)
  policy TEXT NOT NULL,
  set_at INTEGER NOT NULL,
  set_by TEXT NOT NULL,
  PRIMARY KEY (node, volume)
);
-- Each node's policy set revision, bumped on every change (the agent keeps the highest).
CREATE TABLE volume_backup_policy_revisions (
  node TEXT PRIMARY KEY,
  revision INTEGER NOT NULL
);
CREATE TABLE volume_backup_status (
  node TEXT NOT NULL,
  volume TEXT NOT NULL,
  -- the latest backup and verification as the agent reported them (JSON, or NULL: none yet)
  last_backup TEXT,
  last_verify TEXT,
  -- when a verification last succeeded (kept when a later one fails)
  last_verified_ok_at INTEGER,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (node, volume)
);

CREATE TABLE jobs_v2 (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL CHECK (kind IN ('deploy', 'rollback', 'remove', 'volume-backup', 'volume-restore', 'volume-snapshots', 'volume-policies')),
  node TEXT NOT NULL,
  stack TEXT NOT NULL,
  revision INTEGER,
  idempotency_key TEXT NOT NULL UNIQUE,
  state TEXT NOT NULL CHECK (state IN ('awaiting-signature', 'queued', 'running', 'succeeded', 'failed')),
  request TEXT NOT NULL,
  secrets TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER,
  result TEXT,
  error_code TEXT,
  error TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  delivered_at INTEGER,
  delivery_error TEXT,
  logs_dropped INTEGER NOT NULL DEFAULT 0,
  intent TEXT,
  held INTEGER NOT NULL DEFAULT 0 CHECK (held IN (0, 1)),
  sign_by INTEGER
);
INSERT INTO jobs_v2 (seq, id, kind, node, stack, revision, idempotency_key, state, request, secrets, created_by, created_at,
    expires_at, started_at, finished_at, result, error_code, error, attempts, delivered_at, delivery_error, logs_dropped,
    intent, held, sign_by)
  SELECT seq, id, kind, node, stack, revision, idempotency_key, state, request, secrets, created_by, created_at,
    expires_at, started_at, finished_at, result, error_code, error, attempts, delivered_at, delivery_error, logs_dropped,
    intent, held, sign_by FROM jobs;

CREATE TABLE job_steps_v2 (
  job_id TEXT NOT NULL REFERENCES jobs_v2 (id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  state TEXT NOT NULL,
  finished_at INTEGER,
  PRIMARY KEY (job_id, name, started_at)
);
INSERT INTO job_steps_v2 SELECT job_id, name, started_at, state, finished_at FROM job_steps;

CREATE TABLE job_logs_v2 (
  job_id TEXT NOT NULL REFERENCES jobs_v2 (id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  at INTEGER NOT NULL,
  line TEXT NOT NULL,
  PRIMARY KEY (job_id, seq),
  UNIQUE (job_id, at, line)
);
INSERT INTO job_logs_v2 SELECT job_id, seq, at, line FROM job_logs;

DROP TABLE job_steps;
DROP TABLE job_logs;
DROP TABLE jobs;
ALTER TABLE jobs_v2 RENAME TO jobs;
ALTER TABLE job_steps_v2 RENAME TO job_steps;
ALTER TABLE job_logs_v2 RENAME TO job_logs;
CREATE INDEX jobs_by_node ON jobs (node, seq);
CREATE INDEX jobs_by_stack ON jobs (stack, seq);
CREATE INDEX jobs_open ON jobs (state, expires_at) WHERE state IN ('queued', 'running');
CREATE INDEX jobs_awaiting_signature ON jobs (sign_by) WHERE state = 'awaiting-signature' OR held = 1;
