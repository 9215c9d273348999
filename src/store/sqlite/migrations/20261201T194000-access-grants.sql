-- People scoped to some hosts (issue 12). A scoped user ("customer") has no fleet-wide rights:
-- it sees and touches only the nodes its grants cover. A grant names one node, or a node label
-- (key=value, as `dockfleet label` sets), with a role on those nodes.
ALTER TABLE users ADD COLUMN scoped INTEGER NOT NULL DEFAULT 0;

CREATE TABLE node_grants (
  id          TEXT PRIMARY KEY,
  user_id     TEXT NOT NULL REFERENCES users (id),
  node_name   TEXT,
  label_key   TEXT,
  label_value TEXT,
  role        TEXT NOT NULL CHECK (role IN ('operator', 'viewer')),
  created_at  INTEGER NOT NULL,
  CHECK ((node_name IS NULL) <> (label_key IS NULL)),
  CHECK ((label_key IS NULL) = (label_value IS NULL))
);
CREATE INDEX node_grants_user ON node_grants (user_id);

-- Tokens expire (NULL: never, for tokens made before this migration) and remember when they
-- were last used (updated at most once a minute per token).
ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;
ALTER TABLE api_tokens ADD COLUMN last_used_at INTEGER;
