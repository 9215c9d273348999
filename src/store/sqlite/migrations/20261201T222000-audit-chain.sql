-- The hub's audit log made tamper-evident (issue 13): every write to audit_log (an intent, its
-- outcome, or a one-step record) appends one entry here in the same transaction, holding the
-- canonical JSON of what was written, the previous entry's hash and its own (SHA-256).
-- `dockfleet audit verify` replays the chain and compares it with audit_log: an edited, deleted
-- or inserted row, or an edited, removed or reordered chain entry, breaks it.
-- AUTOINCREMENT on both tables: sqlite_sequence keeps the highest id ever used, so rows cut off
-- the end of both are noticed too. Rows from before this migration are chained once by the hub
-- right after it runs (kind 'record', marked as chained at migration), vouching only that they
-- have not changed since.
CREATE TABLE audit_chain (
  seq      INTEGER PRIMARY KEY AUTOINCREMENT,
  kind     TEXT NOT NULL CHECK (kind IN ('intent', 'outcome', 'record')),
  audit_id INTEGER NOT NULL,
  record   TEXT NOT NULL,
  prev     TEXT NOT NULL,
  hash     TEXT NOT NULL
);
CREATE INDEX audit_chain_audit_id ON audit_chain (audit_id);
