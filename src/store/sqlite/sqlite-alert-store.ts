/** AlertStore on the hub's SQLite database (the alerts migration's tables). */
import type Database from 'better-sqlite3';
import { DockfleetError } from '../../protocol/errors.ts';
import type { AlertEvent, AlertStore, DeliveryRecord, IncidentRecord, IncidentSeverity, ReceiverRecord, ReceiverTestRecord } from '../alert-store.ts';
import { type DeliveryRow, deliveryFrom, type IncidentRow, incidentFrom, type ReceiverRow, receiverFrom } from '../rows/alert-rows.ts';
import { StatementCache, translateStorageFailures } from './statement-cache.ts';

const INSERT_DELIVERY = `INSERT OR IGNORE INTO alert_deliveries (id, incident_id, event, receiver_id, state, attempts, next_at, created_at)
  VALUES (?, ?, ?, ?, 'pending', 0, ?, ?)`;

export class SqliteAlertStore implements AlertStore {
  readonly #db: Database.Database;
  readonly #sql: StatementCache;

  constructor(db: Database.Database) {
    this.#db = db;
    this.#sql = new StatementCache(db);
  }

  async openIncidents(): Promise<IncidentRecord[]> {
    return (this.#sql.get(`SELECT * FROM alert_incidents WHERE state = 'open' ORDER BY opened_at`).all() as IncidentRow[]).map(incidentFrom);
  }

  async recentIncidents(limit: number): Promise<IncidentRecord[]> {
    return (this.#sql.get(`SELECT * FROM alert_incidents ORDER BY state = 'open' DESC, updated_at DESC, id LIMIT ?`).all(limit) as IncidentRow[]).map(incidentFrom);
  }

  async getIncident(id: string): Promise<IncidentRecord | null> {
    const row = this.#sql.get('SELECT * FROM alert_incidents WHERE id = ?').get(id) as IncidentRow | undefined;
    return row ? incidentFrom(row) : null;
  }

  async openIncident(i: IncidentRecord, receiverIds: string[], deliveryIds: string[]): Promise<boolean> {
    return this.#db.transaction(() => {
      const taken = this.#sql.get(`SELECT 1 FROM alert_incidents WHERE key = ? AND state = 'open'`).get(i.key);
      if (taken) return false;
      this.#sql
        .get(`INSERT INTO alert_incidents (id, key, kind, severity, node, subject, title, detail, state, opened_at, updated_at, resolved_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, NULL)`)
        .run(i.id, i.key, i.kind, i.severity, i.node, i.subject, i.title, i.detail, i.openedAt, i.updatedAt);
      this.#fileDeliveries(i.id, 'opened', receiverIds, deliveryIds, i.openedAt);
      return true;
    })();
  }

  async updateIncident(id: string, f: { title: string; detail: string; severity: IncidentSeverity; updatedAt: number }): Promise<void> {
    this.#sql.get(`UPDATE alert_incidents SET title = ?, detail = ?, severity = ?, updated_at = ? WHERE id = ? AND state = 'open'`).run(f.title, f.detail, f.severity, f.updatedAt, id);
  }

  async resolveIncident(id: string, at: number, receiverIds: string[], deliveryIds: string[]): Promise<boolean> {
    return this.#db.transaction(() => {
      const changed = this.#sql.get(`UPDATE alert_incidents SET state = 'resolved', resolved_at = ?, updated_at = ? WHERE id = ? AND state = 'open'`).run(at, at, id).changes;
      if (changed === 0) return false;
      this.#fileDeliveries(id, 'resolved', receiverIds, deliveryIds, at);
      return true;
    })();
  }

  #fileDeliveries(incidentId: string, event: AlertEvent, receiverIds: string[], deliveryIds: string[], at: number): void {
    const insert = this.#sql.get(INSERT_DELIVERY);
    for (const [n, receiverId] of receiverIds.entries()) insert.run(deliveryIds[n], incidentId, event, receiverId, at, at);
  }

  async listReceivers(): Promise<ReceiverRecord[]> {
    return (this.#sql.get('SELECT * FROM alert_receivers ORDER BY name').all() as ReceiverRow[]).map(receiverFrom);
  }

  async getReceiver(id: string): Promise<ReceiverRecord | null> {
    const row = this.#sql.get('SELECT * FROM alert_receivers WHERE id = ?').get(id) as ReceiverRow | undefined;
    return row ? receiverFrom(row) : null;
  }

  async insertReceiver(r: ReceiverRecord): Promise<void> {
    try {
      this.#sql
        .get(`INSERT INTO alert_receivers (id, name, format, sealed_target, target_hint, header_names_json, enabled, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
        .run(r.id, r.name, r.format, r.sealedTarget, r.targetHint, JSON.stringify(r.headerNames), r.enabled ? 1 : 0, r.createdAt);
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw new DockfleetError('conflict', `a receiver named ${r.name} exists already`);
      throw err;
    }
  }

  async updateReceiver(r: ReceiverRecord): Promise<void> {
    try {
      this.#sql
        .get(`UPDATE alert_receivers SET name = ?, format = ?, sealed_target = ?, target_hint = ?, header_names_json = ?, enabled = ? WHERE id = ?`)
        .run(r.name, r.format, r.sealedTarget, r.targetHint, JSON.stringify(r.headerNames), r.enabled ? 1 : 0, r.id);
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw new DockfleetError('conflict', `a receiver named ${r.name} exists already`);
      throw err;
    }
  }

  async recordReceiverTest(id: string, t: ReceiverTestRecord): Promise<void> {
    this.#sql.get('UPDATE alert_receivers SET last_test_at = ?, last_test_ok = ?, last_test_status = ?, last_test_error = ? WHERE id = ?').run(t.at, t.ok ? 1 : 0, t.status, t.error, id);
  }

  async deleteReceiver(id: string): Promise<boolean> {
    return this.#sql.get('DELETE FROM alert_receivers WHERE id = ?').run(id).changes > 0;
  }

  async dueDeliveries(now: number, limit: number): Promise<DeliveryRecord[]> {
    return (this.#sql.get(`SELECT * FROM alert_deliveries WHERE state = 'pending' AND next_at <= ? ORDER BY next_at, created_at LIMIT ?`).all(now, limit) as DeliveryRow[]).map(deliveryFrom);
  }

  async nextDeliveryAt(): Promise<number | null> {
    const row = this.#sql.get(`SELECT MIN(next_at) AS at FROM alert_deliveries WHERE state = 'pending'`).get() as { at: number | null };
    return row.at;
  }

  async deliveriesOf(incidentIds: string[]): Promise<DeliveryRecord[]> {
    if (incidentIds.length === 0) return [];
    const rows = this.#db.prepare(`SELECT * FROM alert_deliveries WHERE incident_id IN (${incidentIds.map(() => '?').join(',')}) ORDER BY created_at`).all(...incidentIds) as DeliveryRow[];
    return rows.map(deliveryFrom);
  }

  async recentDeliveries(limit: number): Promise<DeliveryRecord[]> {
    return (this.#sql.get('SELECT * FROM alert_deliveries ORDER BY created_at DESC, id LIMIT ?').all(limit) as DeliveryRow[]).map(deliveryFrom);
  }

  async recordAttempt(
    id: string,
    f: { state: DeliveryRecord['state']; attempts: number; nextAt: number | null; lastStatus: number | null; lastError: string | null; sentAt: number | null },
  ): Promise<void> {
    this.#sql
      .get('UPDATE alert_deliveries SET state = ?, attempts = ?, next_at = ?, last_status = ?, last_error = ?, sent_at = ? WHERE id = ?')
      .run(f.state, f.attempts, f.nextAt, f.lastStatus, f.lastError, f.sentAt, id);
  }
}
translateStorageFailures(SqliteAlertStore);
