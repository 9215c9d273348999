-- Stacks as durable intent (issue 11): node labels, stacks, their revisions, each node's
-- reported state, and rollouts (waves of deploy/rollback/remove jobs) that survive a restart.

-- Keyed by node name: a host enrolled again under the same name keeps its labels.
CREATE TABLE node_labels (
  node TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (node, key)
);

CREATE TABLE stacks (
  name TEXT PRIMARY KEY,
  created_at INTEGER NOT NULL,
  -- The revision every node should be on; 0 before the first deploy.
  current_revision INTEGER NOT NULL DEFAULT 0,
  -- Set while a removal is under way or done; a later deploy clears it.
  removed_at INTEGER
);

CREATE TABLE stack_revisions (
  stack TEXT NOT NULL REFERENCES stacks(name),
  revision INTEGER NOT NULL,
  compose TEXT NOT NULL,
  env_json TEXT NOT NULL,
  -- Names of the secret variables and files, never their values.
  secret_names_json TEXT NOT NULL,
  -- {secretEnv, secretFiles, files}, sealed by the hub's secret box (AES-256-GCM, key outside the database).
  sealed_secrets TEXT NOT NULL,
  file_names_json TEXT NOT NULL,
  -- The StackRevision the agents receive (normalised project, gate, digest): no secret values.
  target_json TEXT NOT NULL,
  target_spec_json TEXT NOT NULL,
  parallel INTEGER NOT NULL,
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (stack, revision)
);

CREATE TABLE stack_nodes (
  stack TEXT NOT NULL REFERENCES stacks(name),
  node TEXT NOT NULL,
  revision INTEGER NOT NULL,
  state TEXT NOT NULL,
  drift_json TEXT NOT NULL DEFAULT '[]',
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (stack, node)
);

CREATE TABLE stack_rollouts (
  id TEXT PRIMARY KEY,
  stack TEXT NOT NULL REFERENCES stacks(name),
  kind TEXT NOT NULL,
  revision INTEGER NOT NULL,
  nodes_json TEXT NOT NULL,
  parallel INTEGER NOT NULL,
  -- Index of the wave being waited for; equal to the number of waves once done.
  wave INTEGER NOT NULL DEFAULT 0,
  state TEXT NOT NULL,
  stopped_at_node TEXT,
  error TEXT,
  job_ids_json TEXT NOT NULL DEFAULT '[]',
  idempotency_key TEXT NOT NULL UNIQUE,
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  finished_at INTEGER
);
CREATE INDEX stack_rollouts_running ON stack_rollouts (state) WHERE state = 'running';
CREATE INDEX stack_rollouts_stack ON stack_rollouts (stack, created_at);
