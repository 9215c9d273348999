/**
 * Alerts as durable records (hub/alerts/): incidents, receivers and deliveries. Filled in by
 * each database folder (sqlite/sqlite-alert-store.ts). The store keeps the two promises the
 * alerts make: one open incident per condition key, and one delivery per incident, event and
 * receiver, so a restarted hub neither opens a condition twice nor sends an event again.
 * A receiver's target (URL and headers) is only ever held sealed.
 */

export type IncidentState = 'open' | 'resolved';
export type IncidentSeverity = 'critical' | 'warning';
export type AlertEvent = 'opened' | 'resolved';
export type ReceiverFormat = 'json' | 'ntfy' | 'slack';
export type DeliveryState = 'pending' | 'sent' | 'failed';

export interface IncidentRecord {
  id: string;
  /** The condition's key, e.g. `node-offline:shop-01`: at most one open incident per key. */
  key: string;
  kind: string;
  severity: IncidentSeverity;
  node: string | null;
  subject: string;
  title: string;
  detail: string;
  state: IncidentState;
  openedAt: number;
  updatedAt: number;
  resolvedAt: number | null;
}

/** A receiver's latest test send: when, whether it answered 2xx, its status, the error. */
export interface ReceiverTestRecord {
  at: number;
  ok: boolean;
  status: number | null;
  error: string | null;
}

export interface ReceiverRecord {
  id: string;
  name: string;
  format: ReceiverFormat;
  /** `{url, headers}` as JSON, sealed with the context `alert-receiver:<id>`. */
  sealedTarget: string;
  /** What may be shown: the URL's scheme and host, never its path, query or credentials. */
  targetHint: string;
  headerNames: string[];
  enabled: boolean;
  createdAt: number;
  /** The latest test send (null until the first); kept by `recordReceiverTest`, untouched by updates. */
  lastTest: ReceiverTestRecord | null;
}

export interface DeliveryRecord {
  id: string;
  incidentId: string;
  event: AlertEvent;
  receiverId: string;
  state: DeliveryState;
  attempts: number;
  /** When the next attempt is due (pending only). */
  nextAt: number | null;
  lastStatus: number | null;
  lastError: string | null;
  createdAt: number;
  sentAt: number | null;
}

export interface AlertStore {
  openIncidents(): Promise<IncidentRecord[]>;
  /** Open ones first, then the most recently changed, up to `limit`. */
  recentIncidents(limit: number): Promise<IncidentRecord[]>;
  getIncident(id: string): Promise<IncidentRecord | null>;
  /** Inserts an open incident and one pending `opened` delivery per enabled receiver, in one
   * transaction; false (and nothing written) when the key already has an open incident. */
  openIncident(incident: IncidentRecord, receiverIds: string[], deliveryIds: string[]): Promise<boolean>;
  updateIncident(id: string, fields: { title: string; detail: string; severity: IncidentSeverity; updatedAt: number }): Promise<void>;
  /** Resolves an open incident and files its `resolved` deliveries, in one transaction; false when it was not open. */
  resolveIncident(id: string, at: number, receiverIds: string[], deliveryIds: string[]): Promise<boolean>;

  listReceivers(): Promise<ReceiverRecord[]>;
  getReceiver(id: string): Promise<ReceiverRecord | null>;
  /** Rejects with `conflict` when the name is taken. */
  insertReceiver(record: ReceiverRecord): Promise<void>;
  updateReceiver(record: ReceiverRecord): Promise<void>;
  /** False when there was no such receiver; its deliveries go with it. */
  deleteReceiver(id: string): Promise<boolean>;
  /** Keeps the outcome of a test send as the receiver's latest (no incident or delivery is made). */
  recordReceiverTest(id: string, test: ReceiverTestRecord): Promise<void>;

  dueDeliveries(now: number, limit: number): Promise<DeliveryRecord[]>;
  nextDeliveryAt(): Promise<number | null>;
  deliveriesOf(incidentIds: string[]): Promise<DeliveryRecord[]>;
  /** Receivers' latest deliveries, newest first. */
  recentDeliveries(limit: number): Promise<DeliveryRecord[]>;
  recordAttempt(id: string, fields: { state: DeliveryState; attempts: number; nextAt: number | null; lastStatus: number | null; lastError: string | null; sentAt: number | null }): Promise<void>;
}
