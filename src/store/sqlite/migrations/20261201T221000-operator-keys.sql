-- Operator keys (issue 13): the public halves of the Ed25519 keys users sign intents with, so
-- people can tell which key is whose. The private halves never reach the hub. `id` is the key's
-- short fingerprint (lib/operator-key-fingerprint.ts); a key is registered once, ever: a revoked
-- key stays on record (revoked_at) and cannot be registered again. Hosts trust only the keys in
-- their own policy file, never this table.
CREATE TABLE operator_keys (
  id          TEXT PRIMARY KEY,
  user_id     TEXT NOT NULL REFERENCES users (id),
  public_key  TEXT NOT NULL UNIQUE,
  name        TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  revoked_at  INTEGER
);
CREATE INDEX operator_keys_user ON operator_keys (user_id);
