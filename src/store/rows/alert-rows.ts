/**
 * The alerts tables' rows as both engines return them (SQLite's INTEGER and PostgreSQL's BIGINT
 * both arrive as numbers; flags are INTEGER 0/1 on both, not BOOLEAN) and the records they map to.
 */
import type { AlertEvent, DeliveryRecord, IncidentRecord, IncidentSeverity, ReceiverRecord } from '../alert-store.ts';

export interface IncidentRow {
  id: string;
  key: string;
  kind: string;
  severity: IncidentSeverity;
  node: string | null;
  subject: string;
  title: string;
  detail: string;
  state: IncidentRecord['state'];
  opened_at: number;
  updated_at: number;
  resolved_at: number | null;
}
export interface ReceiverRow {
  id: string;
  name: string;
  format: ReceiverRecord['format'];
  sealed_target: string;
  target_hint: string;
  header_names_json: string;
  enabled: number;
  created_at: number;
  last_test_at: number | null;
  last_test_ok: number | null;
  last_test_status: number | null;
  last_test_error: string | null;
}
export interface DeliveryRow {
  id: string;
  incident_id: string;
  event: AlertEvent;
  receiver_id: string;
  state: DeliveryRecord['state'];
  attempts: number;
  next_at: number | null;
  last_status: number | null;
  last_error: string | null;
  created_at: number;
  sent_at: number | null;
}

export const incidentFrom = (r: IncidentRow): IncidentRecord => ({
  id: r.id,
  key: r.key,
  kind: r.kind,
  severity: r.severity,
  node: r.node,
  subject: r.subject,
  title: r.title,
  detail: r.detail,
  state: r.state,
  openedAt: r.opened_at,
  updatedAt: r.updated_at,
  resolvedAt: r.resolved_at,
});
export const receiverFrom = (r: ReceiverRow): ReceiverRecord => ({
  id: r.id,
  name: r.name,
  format: r.format,
  sealedTarget: r.sealed_target,
  targetHint: r.target_hint,
  headerNames: JSON.parse(r.header_names_json) as string[],
  enabled: r.enabled === 1,
  createdAt: r.created_at,
  lastTest: r.last_test_at === null ? null : { at: r.last_test_at, ok: r.last_test_ok === 1, status: r.last_test_status, error: r.last_test_error },
});
export const deliveryFrom = (r: DeliveryRow): DeliveryRecord => ({
  id: r.id,
  incidentId: r.incident_id,
  event: r.event,
  receiverId: r.receiver_id,
  state: r.state,
  attempts: r.attempts,
  nextAt: r.next_at,
  lastStatus: r.last_status,
  lastError: r.last_error,
  createdAt: r.created_at,
  sentAt: r.sent_at,
});
