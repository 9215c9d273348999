-- Nodes: a name is unique among nodes that are not revoked, so a revoked name can be enrolled
-- again while the revoked record (and its keys) stay as history.
CREATE TABLE nodes (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  state       TEXT NOT NULL CHECK (state IN ('pending', 'active', 'revoked')),
  created_at  INTEGER NOT NULL,
  approved_at INTEGER,
  revoked_at  INTEGER,
  last_seen   INTEGER,
  facts       TEXT
);
CREATE UNIQUE INDEX nodes_live_name ON nodes (name) WHERE state <> 'revoked';

-- Public keys only: nothing here can be replayed to impersonate an agent.
CREATE TABLE node_keys (
  key_id     TEXT PRIMARY KEY,
  node_id    TEXT NOT NULL REFERENCES nodes (id),
  public_key TEXT NOT NULL,
  state      TEXT NOT NULL CHECK (state IN ('active', 'retired')),
  created_at INTEGER NOT NULL,
  retired_at INTEGER
);
CREATE INDEX node_keys_node ON node_keys (node_id);

-- Enrollment codes and join tokens, stored as hashes of their secrets.
CREATE TABLE enrollment_codes (
  secret_hash TEXT PRIMARY KEY,
  kind        TEXT NOT NULL CHECK (kind IN ('single', 'join')),
  node_name   TEXT,
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL,
  used_at     INTEGER
);

-- People and tools that act on the fleet. Roles: admin (everything), operator (all Docker
-- calls), viewer (read-only Docker calls).
CREATE TABLE users (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  role        TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
  created_at  INTEGER NOT NULL,
  disabled_at INTEGER
);

-- Bearer tokens, stored as hashes; each belongs to a user.
CREATE TABLE api_tokens (
  token_hash TEXT PRIMARY KEY,
  name       TEXT NOT NULL,
  user_id    TEXT NOT NULL REFERENCES users (id),
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
);

-- Last known inventory per node and section, in Docker's list format (JSON).
CREATE TABLE node_inventory (
  node_id    TEXT NOT NULL REFERENCES nodes (id),
  section    TEXT NOT NULL,
  items      TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (node_id, section)
);
