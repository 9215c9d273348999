/** RegistryStore on the hub's SQLite database (the registry-credentials migration's table). */
import type Database from 'better-sqlite3';
import { StatementCache } from '../../store/sqlite/statement-cache.ts';
import type { RegistryCredentialRecord, RegistryStore } from './registry-store.ts';

interface Row {
  id: string;
  server: string;
  username: string;
  sealed_secret: string;
  created_by: string;
  created_at: number;
}

const recordFrom = (r: Row): RegistryCredentialRecord => ({
  id: r.id,
  server: r.server,
  username: r.username,
  sealedSecret: r.sealed_secret,
  createdBy: r.created_by,
  createdAt: r.created_at,
});

export class SqliteRegistryStore implements RegistryStore {
  readonly #sql: StatementCache;

  constructor(db: Database.Database) {
    this.#sql = new StatementCache(db);
  }

  async listRegistries(): Promise<RegistryCredentialRecord[]> {
    return (this.#sql.get('SELECT * FROM registry_credentials ORDER BY server').all() as Row[]).map(recordFrom);
  }

  async getRegistry(id: string): Promise<RegistryCredentialRecord | null> {
    const row = this.#sql.get('SELECT * FROM registry_credentials WHERE id = ?').get(id) as Row | undefined;
    return row ? recordFrom(row) : null;
  }

  async insertRegistry(r: RegistryCredentialRecord): Promise<boolean> {
    const info = this.#sql
      .get(`INSERT INTO registry_credentials (id, server, username, sealed_secret, created_by, created_at)
      VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (server) DO NOTHING`)
      .run(r.id, r.server, r.username, r.sealedSecret, r.createdBy, r.createdAt);
    return info.changes === 1;
  }

  async deleteRegistry(id: string): Promise<boolean> {
    return this.#sql.get('DELETE FROM registry_credentials WHERE id = ?').run(id).changes === 1;
  }
}
