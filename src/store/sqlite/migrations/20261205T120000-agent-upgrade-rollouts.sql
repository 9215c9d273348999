-- Durable agent upgrade rollouts (issue 16): a rollout and its per-node steps are stored, so a
-- hub restarted mid-rollout resumes it where it stood. Each node's step is also a job of the new
-- kind `agent-upgrade` (carried out by the hub itself, never delivered: held), so it shows in
-- `dockfleet jobs` beside every other job. SQLite cannot change a CHECK constraint in place, so
-- the job tables are copied into new ones as in the volume-backup-policies migration.
CREATE TABLE agent_upgrade_rollouts (
  id          TEXT PRIMARY KEY,
  to_version  TEXT NOT NULL,
  parallel    INTEGER NOT NULL,
  state       TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
  created_by  TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  finished_at INTEGER
);
CREATE INDEX agent_upgrade_rollouts_by_time ON agent_upgrade_rollouts (created_at);

-- One row per node, in rollout order (`position`); `job_id` names its agent-upgrade job.
CREATE TABLE agent_upgrade_nodes (
  rollout_id   TEXT NOT NULL REFERENCES agent_upgrade_rollouts (id) ON DELETE CASCADE,
  position     INTEGER NOT NULL,
  node         TEXT NOT NULL,
  wave         INTEGER NOT NULL,
  state        TEXT NOT NULL CHECK (state IN ('waiting', 'sending', 'restarting', 'succeeded', 'failed', 'skipped')),
  from_version TEXT,
  reason       TEXT,
  started_at   INTEGER,
  finished_at  INTEGER,
  job_id       TEXT,
  PRIMARY KEY (rollout_id, position)
);

CREATE TABLE jobs_v2 (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL CHECK (kind IN ('deploy', 'rollback', 'remove', 'volume-backup', 'volume-restore', 'volume-snapshots', 'volume-policies', 'agent-upgrade')),
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
