/** OperatorKeyStore on the hub's PostgreSQL database (the operator-keys migration's table). */
import type { Queryable } from '../../store/postgres/db.ts';
import { type OperatorKeyRow, operatorKeyFrom, operatorKeyValues } from './operator-key-rows.ts';
import type { OperatorKeyRecord, OperatorKeyStore, OperatorKeyWithUser } from './operator-key-store.ts';

export class PostgresOperatorKeyStore implements OperatorKeyStore {
  readonly #db: Queryable;

  constructor(db: Queryable) {
    this.#db = db;
  }

  async insertOperatorKey(r: OperatorKeyRecord): Promise<boolean> {
    // No conflict target: a clash on the fingerprint or on the public key both mean "on record already".
    const { rowCount } = await this.#db.query(
      `INSERT INTO operator_keys (id, user_id, public_key, name, created_at, revoked_at)
      VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
      operatorKeyValues(r),
    );
    return rowCount === 1;
  }

  async getOperatorKey(id: string): Promise<OperatorKeyRecord | null> {
    const row = (await this.#db.query<OperatorKeyRow>('SELECT * FROM operator_keys WHERE id = $1', [id])).rows[0];
    return row ? operatorKeyFrom(row) : null;
  }

  async listOperatorKeys(userId: string): Promise<OperatorKeyRecord[]> {
    return (await this.#db.query<OperatorKeyRow>('SELECT * FROM operator_keys WHERE user_id = $1 ORDER BY created_at, id COLLATE "C"', [userId])).rows.map(operatorKeyFrom);
  }

  async listAllOperatorKeys(): Promise<OperatorKeyWithUser[]> {
    const { rows } = await this.#db.query<OperatorKeyRow & { user_name: string }>(
      `SELECT k.*, u.name AS user_name FROM operator_keys k JOIN users u ON u.id = k.user_id
      ORDER BY k.created_at, k.id COLLATE "C"`,
    );
    return rows.map((r) => ({ ...operatorKeyFrom(r), userName: r.user_name }));
  }

  async revokeOperatorKey(id: string, at: number): Promise<boolean> {
    return (await this.#db.query('UPDATE operator_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [at, id])).rowCount === 1;
  }
}
