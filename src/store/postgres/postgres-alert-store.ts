/**
 * AlertStore on PostgreSQL (the alerts tables as the SQLite migrations make them, translated).
 * Under several replicas the two promises hold by the database's unique indexes: opening an
 * incident is an insert that yields to an open one with the same key (ON CONFLICT on the
 * partial index), and a delivery already filed for an incident, event and receiver is kept.
 */
import { DockfleetError } from '../../protocol/errors.ts';
import type { AlertEvent, AlertStore, DeliveryRecord, IncidentRecord, IncidentSeverity, ReceiverRecord, ReceiverTestRecord } from '../alert-store.ts';
import { type DeliveryRow, deliveryFrom, type IncidentRow, incidentFrom, type ReceiverRow, receiverFrom } from '../rows/alert-rows.ts';
import { isUniqueViolation, type PgDb, type Queryable } from './db.ts';

/** A unique violation on a receiver's name (or id) is the user's conflict, not an internal error. */
function receiverConflict(err: unknown, name: string): unknown {
  return isUniqueViolation(err) ? new DockfleetError('conflict', `a receiver named ${name} exists already`) : err;
}

export class PostgresAlertStore implements AlertStore {
  readonly #db: PgDb;

  constructor(db: PgDb) {
    this.#db = db;
  }

  async openIncidents(): Promise<IncidentRecord[]> {
    return (await this.#db.query<IncidentRow>(`SELECT * FROM alert_incidents WHERE state = 'open' ORDER BY opened_at, id COLLATE "C"`)).rows.map(incidentFrom);
  }

  async recentIncidents(limit: number): Promise<IncidentRecord[]> {
    const { rows } = await this.#db.query<IncidentRow>(`SELECT * FROM alert_incidents ORDER BY state = 'open' DESC, updated_at DESC, id COLLATE "C" LIMIT $1`, [limit]);
    return rows.map(incidentFrom);
  }

  async getIncident(id: string): Promise<IncidentRecord | null> {
    const { rows } = await this.#db.query<IncidentRow>('SELECT * FROM alert_incidents WHERE id = $1', [id]);
    return rows[0] ? incidentFrom(rows[0]) : null;
  }

  async openIncident(i: IncidentRecord, receiverIds: string[], deliveryIds: string[]): Promise<boolean> {
    return this.#db.tx(async (q) => {
      // One statement: a replica opening the same condition at the same moment waits on the
      // partial unique index and then yields, so one incident opens and one set of deliveries goes.
      const { rowCount } = await q.query(
        `INSERT INTO alert_incidents (id, key, kind, severity, node, subject, title, detail, state, opened_at, updated_at, resolved_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'open', $9, $10, NULL)
        ON CONFLICT (key) WHERE state = 'open' DO NOTHING`,
        [i.id, i.key, i.kind, i.severity, i.node, i.subject, i.title, i.detail, i.openedAt, i.updatedAt],
      );
      if (rowCount === 0) return false;
      await fileDeliveries(q, i.id, 'opened', receiverIds, deliveryIds, i.openedAt);
      return true;
    });
  }

  async updateIncident(id: string, f: { title: string; detail: string; severity: IncidentSeverity; updatedAt: number }): Promise<void> {
    await this.#db.query(`UPDATE alert_incidents SET title = $1, detail = $2, severity = $3, updated_at = $4 WHERE id = $5 AND state = 'open'`, [f.title, f.detail, f.severity, f.updatedAt, id]);
  }

  async resolveIncident(id: string, at: number, receiverIds: string[], deliveryIds: string[]): Promise<boolean> {
    return this.#db.tx(async (q) => {
      const { rowCount } = await q.query(`UPDATE alert_incidents SET state = 'resolved', resolved_at = $1, updated_at = $1 WHERE id = $2 AND state = 'open'`, [at, id]);
      if (rowCount === 0) return false;
      await fileDeliveries(q, id, 'resolved', receiverIds, deliveryIds, at);
      return true;
    });
  }

  async listReceivers(): Promise<ReceiverRecord[]> {
    return (await this.#db.query<ReceiverRow>('SELECT * FROM alert_receivers ORDER BY name COLLATE "C"')).rows.map(receiverFrom);
  }

  async getReceiver(id: string): Promise<ReceiverRecord | null> {
    const { rows } = await this.#db.query<ReceiverRow>('SELECT * FROM alert_receivers WHERE id = $1', [id]);
    return rows[0] ? receiverFrom(rows[0]) : null;
  }

  async insertReceiver(r: ReceiverRecord): Promise<void> {
    try {
      await this.#db.query(
        `INSERT INTO alert_receivers (id, name, format, sealed_target, target_hint, header_names_json, enabled, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [r.id, r.name, r.format, r.sealedTarget, r.targetHint, JSON.stringify(r.headerNames), r.enabled ? 1 : 0, r.createdAt],
      );
    } catch (err) {
      throw receiverConflict(err, r.name);
    }
  }

  async updateReceiver(r: ReceiverRecord): Promise<void> {
    try {
      await this.#db.query(`UPDATE alert_receivers SET name = $1, format = $2, sealed_target = $3, target_hint = $4, header_names_json = $5, enabled = $6 WHERE id = $7`, [
        r.name,
        r.format,
        r.sealedTarget,
        r.targetHint,
        JSON.stringify(r.headerNames),
        r.enabled ? 1 : 0,
        r.id,
      ]);
    } catch (err) {
      throw receiverConflict(err, r.name);
    }
  }

  async recordReceiverTest(id: string, t: ReceiverTestRecord): Promise<void> {
    await this.#db.query('UPDATE alert_receivers SET last_test_at = $1, last_test_ok = $2, last_test_status = $3, last_test_error = $4 WHERE id = $5', [t.at, t.ok ? 1 : 0, t.status, t.error, id]);
  }

  async deleteReceiver(id: string): Promise<boolean> {
    return (await this.#db.query('DELETE FROM alert_receivers WHERE id = $1', [id])).rowCount > 0;
  }

  async dueDeliveries(now: number, limit: number): Promise<DeliveryRecord[]> {
    const { rows } = await this.#db.query<DeliveryRow>(`SELECT * FROM alert_deliveries WHERE state = 'pending' AND next_at <= $1 ORDER BY next_at, created_at, id COLLATE "C" LIMIT $2`, [now, limit]);
    return rows.map(deliveryFrom);
  }

  async nextDeliveryAt(): Promise<number | null> {
    const { rows } = await this.#db.query<{ at: number | null }>(`SELECT MIN(next_at) AS at FROM alert_deliveries WHERE state = 'pending'`);
    return rows[0]?.at ?? null;
  }

  async deliveriesOf(incidentIds: string[]): Promise<DeliveryRecord[]> {
    if (incidentIds.length === 0) return [];
    const { rows } = await this.#db.query<DeliveryRow>('SELECT * FROM alert_deliveries WHERE incident_id = ANY($1::text[]) ORDER BY created_at, id COLLATE "C"', [incidentIds]);
    return rows.map(deliveryFrom);
  }

  async recentDeliveries(limit: number): Promise<DeliveryRecord[]> {
    return (await this.#db.query<DeliveryRow>('SELECT * FROM alert_deliveries ORDER BY created_at DESC, id COLLATE "C" LIMIT $1', [limit])).rows.map(deliveryFrom);
  }

  async recordAttempt(
    id: string,
    f: { state: DeliveryRecord['state']; attempts: number; nextAt: number | null; lastStatus: number | null; lastError: string | null; sentAt: number | null },
  ): Promise<void> {
    await this.#db.query('UPDATE alert_deliveries SET state = $1, attempts = $2, next_at = $3, last_status = $4, last_error = $5, sent_at = $6 WHERE id = $7', [
      f.state,
      f.attempts,
      f.nextAt,
      f.lastStatus,
      f.lastError,
      f.sentAt,
      id,
    ]);
  }
}

/** One delivery per incident, event and receiver: one already filed (by this replica or another) is kept. */
async function fileDeliveries(q: Queryable, incidentId: string, event: AlertEvent, receiverIds: string[], deliveryIds: string[], at: number): Promise<void> {
  for (const [n, receiverId] of receiverIds.entries()) {
    await q.query(
      `INSERT INTO alert_deliveries (id, incident_id, event, receiver_id, state, attempts, next_at, created_at)
      VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5) ON CONFLICT DO NOTHING`,
      [deliveryIds[n], incidentId, event, receiverId, at],
    );
  }
}
