/** RegistryStore on the hub's SQLite database (the registry-credentials migration's table). */
import type Database from 'better-sqlite3';
import { StatementCache } from '../../store/sqlite/statement-cache.ts';
import { type RegistryCredentialRow, registryCredentialFrom, registryCredentialValues } from './registry-rows.ts';
import type { RegistryCredentialRecord, RegistryStore } from './registry-store.ts';

export class SqliteRegistryStore implements RegistryStore {
  readonly #sql: StatementCache;

  constructor(db: Database.Database) {
    this.#sql = new StatementCache(db);
  }

  async listRegistries(): Promise<RegistryCredentialRecord[]> {
    return (this.#sql.get('SELECT * FROM registry_credentials ORDER BY server').all() as RegistryCredentialRow[]).map(registryCredentialFrom);
  }

  async getRegistry(id: string): Promise<RegistryCredentialRecord | null> {
    const row = this.#sql.get('SELECT * FROM registry_credentials WHERE id = ?').get(id) as RegistryCredentialRow | undefined;
    return row ? registryCredentialFrom(row) : null;
  }

  async insertRegistry(r: RegistryCredentialRecord): Promise<boolean> {
    const info = this.#sql
      .get(`INSERT INTO registry_credentials (id, server, username, sealed_secret, created_by, created_at)
      VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (server) DO NOTHING`)
      .run(...registryCredentialValues(r));
    return info.changes === 1;
  }

  async deleteRegistry(id: string): Promise<boolean> {
    return this.#sql.get('DELETE FROM registry_credentials WHERE id = ?').run(id).changes === 1;
  }
}
