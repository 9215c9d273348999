-- Hub-managed volume backup custody that runs unattended (issue 14).

-- The repository password the hub made for a node's repository (32 random bytes, base64),
-- sealed under the master key (context: node and repository). `repository` is the hub's name
-- for it: `default` (the host's own), `hub`, a host path or a restic URL.
CREATE TABLE volume_backup_repo_keys (
  node             TEXT NOT NULL,
  repository       TEXT NOT NULL,
  sealed_password  TEXT NOT NULL,
  created_at       INTEGER NOT NULL,
  PRIMARY KEY (node, repository)
);

-- A backup policy's restic environment for a URL repository (credentials), sealed; set with the
-- policy, removed with it, never shown back (names only).
CREATE TABLE volume_backup_policy_secrets (
  node        TEXT NOT NULL,
  volume      TEXT NOT NULL,
  sealed_env  TEXT NOT NULL,
  names       TEXT NOT NULL,
  updated_at  INTEGER NOT NULL,
  PRIMARY KEY (node, volume)
);
