-- A lost host rebuilt from the hub's record (issue 14, item 6).

-- Escrowed repository keys: the password wrapped (age, passphrase recipient) under a recovery
-- code only the operator holds; kept from the backup job whose result carried it.
CREATE TABLE volume_backup_escrow (
  node        TEXT NOT NULL,
  repository  TEXT NOT NULL,
  wrapped_key TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  job_id      TEXT NOT NULL,
  PRIMARY KEY (node, repository)
);

-- Enrollment codes that take over an existing node (`dockfleet enroll NAME --replace`); the
-- code itself is in enrollment_codes. The recovery code, when given, is sealed.
CREATE TABLE node_replacement_codes (
  secret_hash     TEXT PRIMARY KEY REFERENCES enrollment_codes (secret_hash),
  node            TEXT NOT NULL,
  sealed_secrets  TEXT,
  created_at      INTEGER NOT NULL
);

-- One rebuild per node (the latest): its recorded, resumable sequence as JSON, and the
-- secrets it carries to the restore jobs, sealed.
CREATE TABLE node_rebuilds (
  node            TEXT PRIMARY KEY,
  id              TEXT NOT NULL UNIQUE,
  state           TEXT NOT NULL,
  record          TEXT NOT NULL,
  sealed_secrets  TEXT,
  updated_at      INTEGER NOT NULL
);
