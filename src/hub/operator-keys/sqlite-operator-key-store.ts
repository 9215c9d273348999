/** OperatorKeyStore on the hub's SQLite database (the operator-keys migration's table). */
import type Database from 'better-sqlite3';
import { StatementCache, translateStorageFailures } from '../../store/sqlite/statement-cache.ts';
import { type OperatorKeyRow, operatorKeyFrom, operatorKeyValues } from './operator-key-rows.ts';
import type { OperatorKeyRecord, OperatorKeyStore, OperatorKeyWithUser } from './operator-key-store.ts';

export class SqliteOperatorKeyStore implements OperatorKeyStore {
  readonly #sql: StatementCache;

  constructor(db: Database.Database) {
    this.#sql = new StatementCache(db);
  }

  async insertOperatorKey(r: OperatorKeyRecord): Promise<boolean> {
    const info = this.#sql
      .get(`INSERT INTO operator_keys (id, user_id, public_key, name, created_at, revoked_at)
      VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`)
      .run(...operatorKeyValues(r));
    return info.changes === 1;
  }

  async getOperatorKey(id: string): Promise<OperatorKeyRecord | null> {
    const row = this.#sql.get('SELECT * FROM operator_keys WHERE id = ?').get(id) as OperatorKeyRow | undefined;
    return row ? operatorKeyFrom(row) : null;
  }

  async listOperatorKeys(userId: string): Promise<OperatorKeyRecord[]> {
    return (this.#sql.get('SELECT * FROM operator_keys WHERE user_id = ? ORDER BY created_at, id').all(userId) as OperatorKeyRow[]).map(operatorKeyFrom);
  }

  async listAllOperatorKeys(): Promise<OperatorKeyWithUser[]> {
    const rows = this.#sql
      .get(`SELECT k.*, u.name AS user_name FROM operator_keys k JOIN users u ON u.id = k.user_id
      ORDER BY k.created_at, k.id`)
      .all() as Array<OperatorKeyRow & { user_name: string }>;
    return rows.map((r) => ({ ...operatorKeyFrom(r), userName: r.user_name }));
  }

  async revokeOperatorKey(id: string, at: number): Promise<boolean> {
    return this.#sql.get('UPDATE operator_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(at, id).changes === 1;
  }
}

translateStorageFailures(SqliteOperatorKeyStore);
