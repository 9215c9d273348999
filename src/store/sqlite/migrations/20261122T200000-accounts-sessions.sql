-- Web UI accounts: a memory-hard password hash per user (NULL for token-only users such as
-- the bootstrap admin), and browser sessions stored as hashes of their cookie secrets.
ALTER TABLE users ADD COLUMN password_hash TEXT;

CREATE TABLE sessions (
  id_hash    TEXT PRIMARY KEY,
  user_id    TEXT NOT NULL REFERENCES users (id),
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX api_tokens_user ON api_tokens (user_id);
