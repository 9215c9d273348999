-- The job queue (hub/jobs/): a table with a state machine, queued → running → succeeded|failed.
-- `seq` keeps creation order; the idempotency key is a unique index, so a repeated submit finds
-- the job it filed before. `secrets` holds the job's secret part sealed with the hub's secret
-- box (AES-256-GCM under DIR/secrets.key, never in this file); `request` never holds secrets.
CREATE TABLE jobs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL CHECK (kind IN ('deploy', 'rollback', 'remove')),
  node TEXT NOT NULL,
  stack TEXT NOT NULL,
  revision INTEGER,
  idempotency_key TEXT NOT NULL UNIQUE,
  state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
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
  -- Delivery bookkeeping: how often it was sent, when last, and why the last one failed.
  attempts INTEGER NOT NULL DEFAULT 0,
  delivered_at INTEGER,
  delivery_error TEXT,
  logs_dropped INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_by_node ON jobs (node, seq);
CREATE INDEX jobs_by_stack ON jobs (stack, seq);
CREATE INDEX jobs_open ON jobs (state, expires_at) WHERE state IN ('queued', 'running');

-- Steps as the agent reports them: a step is known by its name and start (a replayed event
-- updates the same row).
CREATE TABLE job_steps (
  job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  state TEXT NOT NULL,
  finished_at INTEGER,
  PRIMARY KEY (job_id, name, started_at)
);

-- Log lines, bounded per job (the store drops lines past its cap and counts them in
-- jobs.logs_dropped); a line replayed by a second delivery is stored once.
CREATE TABLE job_logs (
  job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  at INTEGER NOT NULL,
  line TEXT NOT NULL,
  PRIMARY KEY (job_id, seq),
  UNIQUE (job_id, at, line)
);
