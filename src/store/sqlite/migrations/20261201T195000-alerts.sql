-- Alerts (issue 12): incidents, the receivers they are sent to, and every delivery. One open
-- incident per condition key (a partial unique index), one delivery per incident, event and
-- receiver (a unique index): a hub restart finds what it sent and never sends it again.
-- A receiver's URL and headers are sealed by the hub's secret box, bound to the receiver's id.
CREATE TABLE alert_incidents (
  id TEXT PRIMARY KEY,
  key TEXT NOT NULL,
  kind TEXT NOT NULL,
  severity TEXT NOT NULL CHECK (severity IN ('critical', 'warning')),
  node TEXT,
  subject TEXT NOT NULL,
  title TEXT NOT NULL,
  detail TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('open', 'resolved')),
  opened_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  resolved_at INTEGER
);
CREATE UNIQUE INDEX alert_incidents_open_key ON alert_incidents (key) WHERE state = 'open';
CREATE INDEX alert_incidents_recent ON alert_incidents (updated_at);

CREATE TABLE alert_receivers (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  format TEXT NOT NULL CHECK (format IN ('json', 'ntfy', 'slack')),
  sealed_target TEXT NOT NULL,
  target_hint TEXT NOT NULL,
  header_names_json TEXT NOT NULL,
  enabled INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);

CREATE TABLE alert_deliveries (
  id TEXT PRIMARY KEY,
  incident_id TEXT NOT NULL REFERENCES alert_incidents (id) ON DELETE CASCADE,
  event TEXT NOT NULL CHECK (event IN ('opened', 'resolved')),
  receiver_id TEXT NOT NULL REFERENCES alert_receivers (id) ON DELETE CASCADE,
  state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
  attempts INTEGER NOT NULL,
  next_at INTEGER,
  last_status INTEGER,
  last_error TEXT,
  created_at INTEGER NOT NULL,
  sent_at INTEGER,
  UNIQUE (incident_id, event, receiver_id)
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (next_at) WHERE state = 'pending';
