-- The edge's TLS certificates (issue 15): supplied by a user (wildcards included) or issued by
-- ACME (at most one per host). Private keys are sealed by the hub's secret box (AES-256-GCM,
-- key outside the database), bound to the row's id; never stored in plaintext.
CREATE TABLE edge_certificates (
  id TEXT PRIMARY KEY,
  source TEXT NOT NULL CHECK (source IN ('supplied', 'acme')),
  -- The host an ACME certificate was ordered for; NULL for a supplied certificate.
  acme_host TEXT UNIQUE,
  names_json TEXT NOT NULL,
  cert_pem TEXT NOT NULL,
  sealed_key TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  not_before INTEGER NOT NULL,
  not_after INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  CHECK ((source = 'acme') = (acme_host IS NOT NULL))
);
