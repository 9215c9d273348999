/** RegistryStore on the hub's PostgreSQL database (the registry-credentials migration's table). */
import type { Queryable } from '../../store/postgres/db.ts';
import { type RegistryCredentialRow, registryCredentialFrom, registryCredentialValues } from './registry-rows.ts';
import type { RegistryCredentialRecord, RegistryStore } from './registry-store.ts';

export class PostgresRegistryStore implements RegistryStore {
  readonly #db: Queryable;

  constructor(db: Queryable) {
    this.#db = db;
  }

  async listRegistries(): Promise<RegistryCredentialRecord[]> {
    // COLLATE "C": byte order, as SQLite sorts, whatever the database's locale.
    return (await this.#db.query<RegistryCredentialRow>('SELECT * FROM registry_credentials ORDER BY server COLLATE "C"')).rows.map(registryCredentialFrom);
  }

  async getRegistry(id: string): Promise<RegistryCredentialRecord | null> {
    const row = (await this.#db.query<RegistryCredentialRow>('SELECT * FROM registry_credentials WHERE id = $1', [id])).rows[0];
    return row ? registryCredentialFrom(row) : null;
  }

  async insertRegistry(r: RegistryCredentialRecord): Promise<boolean> {
    const { rowCount } = await this.#db.query(
      `INSERT INTO registry_credentials (id, server, username, sealed_secret, created_by, created_at)
      VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (server) DO NOTHING`,
      registryCredentialValues(r),
    );
    return rowCount === 1;
  }

  async deleteRegistry(id: string): Promise<boolean> {
    return (await this.#db.query('DELETE FROM registry_credentials WHERE id = $1', [id])).rowCount === 1;
  }
}
