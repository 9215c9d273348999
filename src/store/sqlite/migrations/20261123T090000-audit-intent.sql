-- Audit rows are written in two steps: the intent (who, where, what, when it started) before a
-- call is forwarded, the outcome (status, when it finished, bytes) after. A row whose outcome
-- never came is a call the hub did not see end (a crash, a kill). `at` is now the start time;
-- rows from before this migration have only their finish time, kept as both.
CREATE TABLE audit_log_v2 (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  at          INTEGER NOT NULL,
  user        TEXT NOT NULL,
  node        TEXT,
  method      TEXT NOT NULL,
  path        TEXT NOT NULL,
  status      INTEGER,
  finished_at INTEGER,
  bytes       INTEGER
);
INSERT INTO audit_log_v2 (id, at, user, node, method, path, status, finished_at)
  SELECT id, at, user, node, method, path, status, at FROM audit_log;
DROP TABLE audit_log;
ALTER TABLE audit_log_v2 RENAME TO audit_log;
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_user ON audit_log (user, at);
