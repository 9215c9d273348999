-- Client certificates the hub issued (for the stock docker CLI); the hub never sees the key.
CREATE TABLE client_certs (
  serial     TEXT PRIMARY KEY,
  user_id    TEXT NOT NULL REFERENCES users (id),
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  revoked_at INTEGER
);

-- Who did what, where, when: every mutating call through the Docker gateway and the API.
CREATE TABLE audit_log (
  id     INTEGER PRIMARY KEY AUTOINCREMENT,
  at     INTEGER NOT NULL,
  user   TEXT NOT NULL,
  node   TEXT,
  method TEXT NOT NULL,
  path   TEXT NOT NULL,
  status INTEGER NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
