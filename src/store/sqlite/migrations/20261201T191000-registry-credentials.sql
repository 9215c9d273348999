-- Registry credentials (issue 12): a username and a password or token per registry host, for
-- pulls the web UI asks for. The secret is sealed by the hub's secret box (AES-256-GCM, key
-- outside the database), bound to the row's id; it is never stored or returned in plaintext.
CREATE TABLE registry_credentials (
  id TEXT PRIMARY KEY,
  server TEXT NOT NULL UNIQUE,
  username TEXT NOT NULL,
  sealed_secret TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
